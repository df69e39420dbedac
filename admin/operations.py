"""Operators' commands: backup, restore, integrity check, retention purge.

    flask --app wsgi backup --out FILE          a consistent copy, taken while the kiosk serves
    flask --app wsgi restore --from FILE [--force]
    flask --app wsgi integrity                  every dossier's seal and signature, the audit chain
    flask --app wsgi purge [--dry-run] [--draft-days 7]

SQLite: `backup` uses SQLite's online backup API, which copies one consistent snapshot while
workers go on writing (WAL readers never block writers), then checks the copy with
`PRAGMA integrity_check`. `restore` copies the file back into the live database through the same
API in one write transaction: running workers see the old database or the new one, never a mix.
PostgreSQL: `backup` runs `pg_dump --format=custom` (a consistent snapshot by itself) and `restore`
runs `pg_restore --clean --single-transaction`; both need the PostgreSQL client tools of the
server's major version (`apt-get install postgresql-client-15`).

What a backup does not hold, on purpose: the keys (instance/keys/, or the KIOSK_* key variables),
without which the sealed personal data and signing keys in it are unreadable, so a stolen backup
leaks nothing; keep a copy of the keys apart from the backups. Uploaded papers live in
instance/uploads/ (sealed, written once, never changed): copy that folder *after* the database
backup (rsync), so every file a backed-up row names is in the copy.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import click
from flask import Flask
from sqlalchemy import func, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from core import audit_log, retention
from core.sealing import Keyring, SealError, unseal_json
from core.services import commune_verify_keys, dossier_context
from core.signing import Signature, VerifyKey, canonical_bytes, verify
from storage.files import FileStore
from storage.models import Attachment, Dossier
from storage.runtime import Runtime
from storage.schema import upgrade

# --- Checking what is stored ---------------------------------------------------------------------


@dataclass
class DossierCheck:
    """Every stored dossier read back: sealed data opens, its hash and signature match."""

    checked: int
    purged: int
    bad: list[str]  # dossier codes that do not verify

    @property
    def ok(self) -> bool:
        return not self.bad


def check_dossiers(session: Session, keyring: Keyring) -> DossierCheck:
    """Unseal every dossier (context `services.dossier_context`) and verify its signature with
    its commune's keys; a purged dossier (tombstone) has nothing left to check."""
    import hashlib

    keys: dict[int, dict[str, VerifyKey]] = {}
    checked = purged = 0
    bad: list[str] = []
    for dossier in session.scalars(
        select(Dossier).order_by(Dossier.id), execution_options={"yield_per": 500}
    ):
        if retention.is_tombstone(dossier.sealed_data):
            purged += 1
            continue
        checked += 1
        ring = keys.get(dossier.commune_id)
        if ring is None:
            ring = keys[dossier.commune_id] = commune_verify_keys(session, dossier.commune_id)
        try:
            payload = unseal_json(dossier.sealed_data, keyring, context=dossier_context(dossier))
        except SealError:
            bad.append(dossier.code)
            continue
        digest = hashlib.sha256(canonical_bytes(payload)).hexdigest()
        signature = Signature(dossier.signature_key_id, dossier.signature)
        if (
            digest != dossier.content_hash
            or payload.get("code", dossier.code) != dossier.code  # signed in before 2026-12 only
            or not verify(payload, signature, ring)
        ):
            bad.append(dossier.code)
        session.expunge(dossier)
    return DossierCheck(checked, purged, bad)


# --- SQLite -------------------------------------------------------------------------------------


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for another engine."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:":
        raise click.ClickException("An in-memory SQLite database cannot be backed up.")
    return Path(parsed.database).resolve()


def _sqlite_connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


def _integrity(conn: sqlite3.Connection) -> str:
    rows = [r[0] for r in conn.execute("PRAGMA integrity_check")]
    return "ok" if rows == ["ok"] else "; ".join(str(r) for r in rows[:5])


def _count(conn: sqlite3.Connection, table: str) -> int:
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608 - constant names
    except sqlite3.OperationalError:
        return 0


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    size: int
    dossiers: int
    audit_head: str


def backup_sqlite(source: Path, out: Path) -> BackupInfo:
    """Copy the live database to `out` (replaced atomically), as one consistent snapshot.

    The whole copy is one step of the backup API (`pages=-1`): it reads inside a single read
    transaction, so writers carry on in the WAL and the copy is the database as of one commit.
    (A stepwise copy would start over each time another process commits, forever under load.)
    """
    if not source.exists():
        raise click.ClickException(f"No database at {source}: nothing to back up.")
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    part.unlink(missing_ok=True)
    src = _sqlite_connect(source)
    dst = sqlite3.connect(part, isolation_level=None)
    try:
        src.backup(dst, pages=-1)
        # A standalone file: no -wal/-shm beside it, so it can be copied and opened anywhere.
        dst.execute("PRAGMA journal_mode = DELETE")
        problem = _integrity(dst)
        if problem != "ok":
            raise click.ClickException(f"The copy failed its integrity check: {problem}")
        dossiers = _count(dst, "dossier")
        head = dst.execute("SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1").fetchone()
    finally:
        src.close()
        dst.close()
    fd = os.open(part, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(part, out)
    _fsync_dir(out.parent)
    return BackupInfo(
        out, out.stat().st_size, dossiers, f"{head[0]}:{head[1]}" if head else "0:(empty)"
    )


def restore_sqlite(backup: Path, target: Path, *, force: bool) -> int:
    """Copy `backup` into the database at `target` in one write transaction; returns dossiers."""
    src = sqlite3.connect(f"file:{backup}?mode=ro", uri=True, isolation_level=None)
    try:
        problem = _integrity(src)
        if problem != "ok":
            raise click.ClickException(f"{backup} is not an intact SQLite database: {problem}")
        tables = {r[0] for r in src.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"dossier", "audit_event", "alembic_version"} <= tables:
            raise click.ClickException(f"{backup} is not a backup of this kiosk's database.")
        dossiers = _count(src, "dossier")
        if target.exists() and not force:
            dst = _sqlite_connect(target)
            try:
                live = _count(dst, "dossier") + _count(dst, "audit_event")
            finally:
                dst.close()
            if live:
                raise click.ClickException(
                    f"The database at {target} is not empty ({live} dossiers and audit records). "
                    "Restoring replaces all of it: stop the server, keep a backup of it, and run "
                    "again with --force."
                )
        target.parent.mkdir(parents=True, exist_ok=True)
        dst = _sqlite_connect(target)
        try:
            # One write transaction on the destination: readers see the old or the new database.
            src.backup(dst, pages=-1)
            dst.execute("PRAGMA journal_mode = WAL")
            problem = _integrity(dst)
        finally:
            dst.close()
        if problem != "ok":
            raise click.ClickException(f"The restored database failed its check: {problem}")
        return dossiers
    finally:
        src.close()


# --- PostgreSQL ---------------------------------------------------------------------------------


def _pg_env(url: str) -> tuple[dict[str, str], str]:
    """libpq environment for `url` (the password never goes on a command line) and the db name."""
    parsed = make_url(url)
    env = dict(os.environ)
    for var, value in (
        ("PGHOST", parsed.host),
        ("PGPORT", str(parsed.port) if parsed.port else None),
        ("PGUSER", parsed.username),
        ("PGPASSWORD", parsed.password),
        ("PGDATABASE", parsed.database),
    ):
        if value:
            env[var] = str(value)
    return env, str(parsed.database or "")


def _pg_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise click.ClickException(
            f"{name} is not installed. Install the PostgreSQL client tools of the server's major "
            "version (Debian: apt-get install postgresql-client-15) and run again."
        )
    return path


def backup_postgres(url: str, out: Path) -> int:
    env, _ = _pg_env(url)
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    result = subprocess.run(  # noqa: S603 - a fixed tool, arguments built here, no shell
        [_pg_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={part}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        part.unlink(missing_ok=True)
        raise click.ClickException(f"pg_dump failed: {result.stderr.strip()[:500]}")
    os.replace(part, out)
    _fsync_dir(out.parent)
    return out.stat().st_size


def restore_postgres(url: str, backup: Path) -> None:
    env, database = _pg_env(url)
    result = subprocess.run(  # noqa: S603 - a fixed tool, arguments built here, no shell
        [
            _pg_tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            "--exit-on-error",
            f"--dbname={database}",
            str(backup),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise click.ClickException(f"pg_restore failed: {result.stderr.strip()[:500]}")


# --- Retention ----------------------------------------------------------------------------------


@dataclass
class PurgeTotals:
    report: retention.PurgeReport
    drafts: int
    sweep: retention.SweepReport | None


def purge(
    rt: Runtime,
    *,
    now: datetime,
    dry_run: bool = False,
    draft_days: int = retention.DRAFT_RETENTION_DAYS,
    batch: int = 100,
    actor: str = "cli",
) -> PurgeTotals:
    """Purge expired dossiers in short transactions (submissions go on between them), delete
    their files after each commit, drop abandoned draft uploads, then sweep stray files."""
    store = FileStore(rt.upload_dir)
    with rt.db.reading() as s:
        expired = retention.expired_dossiers(s, now=now)
    total = retention.PurgeReport()
    if dry_run:
        total.codes = [e.code for e in expired]
        total.dossiers = len(expired)
        with rt.db.reading() as s:
            drafts = len(retention.abandoned_drafts(s, now=now, days=draft_days))
        return PurgeTotals(total, drafts, None)
    for start in range(0, len(expired), batch):
        with rt.db.writing() as s:
            part, files = retention.purge_batch(
                s, expired[start : start + batch], actor=actor, now=now
            )
        part.files_deleted = retention.delete_files(store, files)
        for name in ("dossiers", "supplements", "attachments", "transfers", "files_deleted"):
            setattr(total, name, getattr(total, name) + getattr(part, name))
        total.skipped_changed += part.skipped_changed
        total.codes += part.codes
    with rt.db.writing() as s:
        rows = retention.abandoned_drafts(s, now=now, days=draft_days)
        draft_files = retention.drop_abandoned(s, rows, actor=actor, now=now)
    drafts = retention.delete_files(store, draft_files)
    sweep = retention.sweep_files(rt.db.read_sessions, Path(rt.upload_dir), now=now)
    return PurgeTotals(total, drafts, sweep)


# --- Commands -----------------------------------------------------------------------------------


def register(app: Flask) -> None:
    """Add the operators' commands to `flask --app wsgi`."""
    from cli import clear_errors, now_utc, runtime

    @app.cli.command("backup")
    @click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
    @clear_errors
    def backup_command(out: Path) -> None:
        """Write a consistent backup of the database to FILE while the kiosk keeps serving."""
        rt = runtime()
        source = sqlite_file(rt.database_url)
        if source is not None:
            info = backup_sqlite(source, out)
            click.echo(f"Backup written: {info.path} ({info.size // 1024} KB, SQLite)")
            click.echo(f"  integrity check: ok; dossiers: {info.dossiers}")
            click.echo(f"  audit head in the backup: {info.audit_head}")
        else:
            size = backup_postgres(rt.database_url, out)
            click.echo(f"Backup written: {out} ({size // 1024} KB, pg_dump custom format)")
        click.echo(
            f"Not in the backup, on purpose: the keys ({rt.instance_path / 'keys'}) and the "
            f"uploaded papers ({rt.upload_dir}); copy the papers now, the keys to a safe place."
        )

    @app.cli.command("restore")
    @click.option(
        "--from",
        "backup",
        required=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
    )
    @click.option("--force", is_flag=True, help="Replace a database that already holds data.")
    @clear_errors
    def restore_command(backup: Path, force: bool) -> None:
        """Replace the database with a backup, then check every dossier and the audit chain."""
        rt = runtime()
        target = sqlite_file(rt.database_url)
        if target is not None:
            restore_sqlite(backup.resolve(), target, force=force)
        else:
            if not force:
                live = 0
                if inspect(rt.db.engine).has_table("dossier"):
                    with rt.db.reading() as s:
                        live = s.scalar(select(func.count()).select_from(Dossier)) or 0
                if live:
                    raise click.ClickException(
                        f"The database holds {live} dossiers. Restoring replaces all of it: stop "
                        "the server, back it up, and run again with --force."
                    )
            restore_postgres(rt.database_url, backup.resolve())
        rt.db.dispose()  # connections opened before the restore see the old schema cache
        upgrade(rt.db.engine)
        click.echo(f"Restored {backup} into {rt.db.dialect}.")
        if not _report_integrity(rt):
            sys.exit(1)

    @app.cli.command("integrity")
    @clear_errors
    def integrity_command() -> None:
        """Check every dossier's seal and signature and the audit chain: exit 0 intact, 1 not."""
        if not _report_integrity(runtime()):
            sys.exit(1)

    @app.cli.command("purge")
    @click.option("--dry-run", is_flag=True, help="Only list what would be purged.")
    @click.option(
        "--draft-days",
        default=retention.DRAFT_RETENTION_DAYS,
        show_default=True,
        type=click.IntRange(min=1),
        help="Delete papers attached to forms never sent after this many days.",
    )
    @click.option("--batch", default=100, show_default=True, type=click.IntRange(min=1, max=5000))
    @clear_errors
    def purge_command(dry_run: bool, draft_days: int, batch: int) -> None:
        """Delete personal data whose retention period is over; keep statistics and the audit."""
        rt = runtime()
        rt.keys  # noqa: B018 - fails early with a clear message when init has not run
        totals = purge(rt, now=now_utc(), dry_run=dry_run, draft_days=draft_days, batch=batch)
        r = totals.report
        if dry_run:
            click.echo(
                f"Would purge {r.dossiers} dossier(s) and {totals.drafts} abandoned upload(s)."
            )
            for code in r.codes[:50]:
                click.echo(f"  {code}")
            if len(r.codes) > 50:
                click.echo(f"  … and {len(r.codes) - 50} more")
            return
        click.echo(
            f"Purged {r.dossiers} dossier(s): {r.supplements} supplement(s), {r.attachments} "
            f"paper(s) ({r.files_deleted} file(s) deleted), {r.transfers} transfer note(s)."
        )
        if r.skipped_changed:
            click.echo(f"  {r.skipped_changed} changed meanwhile: left for the next run.")
        click.echo(f"Abandoned uploads (forms never sent, > {draft_days} days): {totals.drafts}")
        if totals.sweep is not None:
            sw = totals.sweep
            click.echo(
                f"Files checked: {sw.examined}; stray files removed: "
                f"{sw.deleted_purged + sw.deleted_orphans}"
            )


def _report_integrity(rt: Runtime) -> bool:
    with rt.db.reading() as s:
        dossiers = check_dossiers(s, rt.keys.sealing)
        chain = audit_log.verify(s)
        files = s.scalar(
            select(func.count()).select_from(Attachment).where(Attachment.purged_at.is_(None))
        )
    click.echo(
        f"Dossiers: {dossiers.checked} checked, {dossiers.purged} purged, "
        f"{len(dossiers.bad)} failing"
        + (f" ({', '.join(dossiers.bad[:10])})" if dossiers.bad else "")
    )
    click.echo(f"Papers on record: {files}")
    if chain.ok:
        click.echo(f"Audit chain: intact, head {chain.head_seq}:{chain.head_hash}")
    else:
        click.echo(f"Audit chain: BROKEN at record {chain.first_bad_seq}: {chain.reason.en}")
    return dossiers.ok and chain.ok
