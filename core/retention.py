"""Retention of citizens' personal data (thời hạn lưu trữ dữ liệu cá nhân) and its purge.

A dossier (hồ sơ) holds personal data only for as long as the procedure needs it: each procedure
definition states `retention_days`, counted from the day the dossier was closed (the decision, or
the withdrawal). NĐ 13/2023/NĐ-CP (domain.md §7) asks that personal data be deleted once its
purpose is served; the office's own paper register (sổ hộ tịch) is the legal record, not this kiosk.

Purging (xóa dữ liệu hết hạn) a dossier removes what identifies the citizen and keeps what the
commune must still be able to count and prove:

- removed: the sealed form values (`Dossier.sealed_data` becomes a tombstone ``purged:<date>``),
  the sealed corrected values of supplements, the uploaded papers on disk and the citizen's names
  for them, and the sealed transfer note of a bank payment linked to the dossier (it may name the
  payer);
- kept: the code, procedure, states, dates, fee, the public history (officials' signed decisions
  and their public reasons), the signature and the hash of the signed content, so the anonymous
  statistics stay exact, a citizen's signed receipt still matches a stored hash, and the audit
  chain, which never held personal data, stays whole: every purge appends one audit event per
  dossier (`dossier.purge`).

Files are deleted only after the transaction that marked them purged has committed, so a rollback
never leaves rows pointing at deleted papers. A crash between the commit and the deletion leaves
sealed files that no live row names; `sweep_files` removes those, together with the papers of
forms that were never sent (uploads wait on a draft until the form is submitted) and files left by
a server killed half-way through an upload. It never touches a file younger than its grace period,
so an upload in progress is safe.

Which period applies is the one the commune applies now (its current version of the procedure), or
the version the dossier was filed under when the commune no longer offers the procedure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.audit_log import record
from core.dossier import TERMINAL
from storage.definitions import definition_by_version_id, definition_of
from storage.files import FileStore
from storage.models import (
    Attachment,
    BankTransfer,
    CommuneProcedure,
    Dossier,
    DossierEvent,
)

TOMBSTONE_PREFIX = "purged:"
# A file on disk that no live row names is removed only once it is this old: an upload being
# written (file first, row at commit) is never mistaken for an orphan.
FILE_GRACE = timedelta(days=1)
# Papers attached to a form that was never sent are kept this long, so a citizen who comes back
# to the open page the next day still has them.
DRAFT_RETENTION_DAYS = 7


def tombstone(now: datetime) -> str:
    """What replaces a purged dossier's sealed data: the marker and the day (UTC) it was purged."""
    return f"{TOMBSTONE_PREFIX}{now.astimezone(UTC).date().isoformat()}"


def is_tombstone(sealed_data: str) -> bool:
    return sealed_data.startswith(TOMBSTONE_PREFIX)


def purge_due(closed_at: datetime, retention_days: int) -> datetime:
    """The moment the personal data of a dossier closed at `closed_at` may be purged."""
    if retention_days < 1:
        raise ValueError(f"retention_days must be at least 1, got {retention_days}")
    return _aware(closed_at) + timedelta(days=retention_days)


def is_expired(closed_at: datetime, retention_days: int, now: datetime) -> bool:
    return purge_due(closed_at, retention_days) <= now


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes for timezone-aware columns; they were stored as UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Expired:
    """A dossier whose retention period is over."""

    dossier_id: int
    commune_id: int
    code: str
    procedure_code: str
    closed_at: datetime
    retention_days: int


@dataclass
class PurgeReport:
    dossiers: int = 0
    supplements: int = 0
    attachments: int = 0
    transfers: int = 0
    files_deleted: int = 0
    skipped_changed: int = 0  # changed since they were selected: left for the next run
    codes: list[str] = field(default_factory=list)


class RetentionPolicy:
    """`retention_days` for a dossier: the commune's current version of its procedure, else the
    version it was filed under. Definitions are parsed once per (commune, procedure)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._current: dict[tuple[int, str], int | None] = {}
        self._by_version: dict[int, int] = {}

    def days(self, commune_id: int, procedure_code: str, version_id: int) -> int:
        key = (commune_id, procedure_code)
        if key not in self._current:
            setting = self._session.scalar(
                select(CommuneProcedure).where(
                    CommuneProcedure.commune_id == commune_id,
                    CommuneProcedure.code == procedure_code,
                )
            )
            self._current[key] = (
                definition_of(setting.version).retention_days if setting is not None else None
            )
        current = self._current[key]
        if current is not None:
            return current
        if version_id not in self._by_version:
            defn = definition_by_version_id(self._session, version_id)
            self._by_version[version_id] = defn.retention_days
        return self._by_version[version_id]


def _closed_at(session: Session, dossier_id: int, closed_at: datetime | None) -> datetime | None:
    """When the dossier was closed: its `closed_at`, or (a withdrawal, which does not set it) the
    time of its last recorded step."""
    if closed_at is not None:
        return _aware(closed_at)
    last = session.scalar(
        select(func.max(DossierEvent.at)).where(DossierEvent.dossier_id == dossier_id)
    )
    return _aware(last) if last is not None else None


def expired_dossiers(session: Session, *, now: datetime, limit: int | None = None) -> list[Expired]:
    """Closed dossiers not yet purged whose retention period is over, oldest closure first."""
    policy = RetentionPolicy(session)
    rows = session.execute(
        select(
            Dossier.id,
            Dossier.commune_id,
            Dossier.code,
            Dossier.procedure_code,
            Dossier.procedure_version_id,
            Dossier.closed_at,
        )
        .where(
            Dossier.purged_at.is_(None),
            (Dossier.closed_at.is_not(None)) | (Dossier.state.in_(list(TERMINAL))),
        )
        .order_by(Dossier.id),
        execution_options={"yield_per": 2000},
    ).all()
    found: list[Expired] = []
    for row in rows:
        closed = _closed_at(session, row.id, row.closed_at)
        if closed is None:
            continue
        days = policy.days(row.commune_id, row.procedure_code, row.procedure_version_id)
        if is_expired(closed, days, now):
            found.append(
                Expired(row.id, row.commune_id, row.code, row.procedure_code, closed, days)
            )
    found.sort(key=lambda e: (e.closed_at, e.dossier_id))
    return found[:limit] if limit is not None else found


def purge_batch(
    session: Session, batch: Iterable[Expired], *, actor: str, now: datetime
) -> tuple[PurgeReport, list[str]]:
    """Purge these dossiers in the caller's write transaction.

    Returns what was done and the storage names of the files to delete *after* the commit. Each
    dossier is read again under the transaction's lock (a row lock on PostgreSQL, the write lock on
    SQLite) and left alone if it was purged or reopened meanwhile. Audit events are appended last,
    after every row change (the lock order `core.audit_log` requires).
    """
    report = PurgeReport()
    files: list[str] = []
    audited: list[tuple[Expired, int, int]] = []
    postgres = session.get_bind().dialect.name == "postgresql"
    for item in batch:
        query = select(Dossier).where(Dossier.id == item.dossier_id)
        if postgres:
            query = query.with_for_update()
        dossier = session.scalar(query)
        closed = _closed_at(session, dossier.id, dossier.closed_at) if dossier is not None else None
        if (
            dossier is None
            or dossier.purged_at is not None
            or closed is None
            or not is_expired(closed, item.retention_days, now)
        ):
            report.skipped_changed += 1
            continue
        dossier.sealed_data = tombstone(now)
        dossier.purged_at = now
        supplements = 0
        for event in session.scalars(
            select(DossierEvent).where(
                DossierEvent.dossier_id == dossier.id, DossierEvent.sealed_data.is_not(None)
            )
        ):
            event.sealed_data = None
            supplements += 1
        attachments = 0
        for att in session.scalars(
            select(Attachment).where(
                Attachment.dossier_id == dossier.id, Attachment.purged_at.is_(None)
            )
        ):
            att.purged_at = now
            att.name_sealed = ""
            files.append(att.storage_name)
            attachments += 1
        for transfer in session.scalars(
            select(BankTransfer).where(
                BankTransfer.dossier_id == dossier.id, BankTransfer.description_sealed.is_not(None)
            )
        ):
            transfer.description_sealed = None
            report.transfers += 1
        report.dossiers += 1
        report.supplements += supplements
        report.attachments += attachments
        report.codes.append(dossier.code)
        audited.append((item, attachments, supplements))
    session.flush()
    for item, attachments, supplements in audited:
        record(
            session,
            actor=actor,
            action="dossier.purge",
            target=f"dossier:{item.dossier_id}",
            commune_id=item.commune_id,
            detail={
                "code": item.code,
                "procedure": item.procedure_code,
                "closed_on": item.closed_at.date().isoformat(),
                "retention_days": item.retention_days,
                "files": attachments,
                "supplements": supplements,
            },
            now=now,
        )
    return report, files


def delete_files(store: FileStore, names: Iterable[str]) -> int:
    """Delete sealed files by storage name (after the commit that marked them purged)."""
    deleted = 0
    for name in names:
        if store.exists(name):
            store.delete(name)
            deleted += 1
    return deleted


# --- Papers of forms never sent, and files no row names --------------------------------------


def abandoned_drafts(session: Session, *, now: datetime, days: int) -> list[Attachment]:
    """Uploads still waiting on a form draft `days` after they were sent: the form was given up."""
    cutoff = now - timedelta(days=days)
    return list(
        session.scalars(
            select(Attachment)
            .where(
                Attachment.dossier_id.is_(None),
                Attachment.draft_hash.is_not(None),
                Attachment.created_at < cutoff,
            )
            .order_by(Attachment.id)
        )
    )


def drop_abandoned(
    session: Session, rows: list[Attachment], *, actor: str, now: datetime
) -> list[str]:
    """Delete the rows of abandoned uploads (one audit event for all); returns their files."""
    names = [row.storage_name for row in rows]
    for row in rows:
        session.delete(row)
    session.flush()
    if names:
        record(
            session,
            actor=actor,
            action="uploads.purge_drafts",
            target="attachment:drafts",
            commune_id=None,
            detail={"files": len(names)},
            now=now,
        )
    return names


@dataclass(frozen=True)
class SweepReport:
    examined: int
    deleted_purged: int  # files of purged rows left by a crash after the commit
    deleted_orphans: int  # files no row names (an upload whose transaction never committed)


def _stored_files(root: Path) -> dict[str, list[Path]]:
    """Storage names on disk grouped by their two-character folder (FileStore's layout)."""
    found: dict[str, list[Path]] = {}
    if not root.is_dir():
        return found
    for folder in sorted(root.iterdir()):
        if not folder.is_dir() or len(folder.name) != 2:
            continue
        for path in folder.iterdir():
            name = path.name
            if path.suffix == ".tmp":  # a write cut short (FileStore writes .tmp, then renames)
                name = path.stem
            if len(name) == 32 and all(c in "0123456789abcdef" for c in name):
                found.setdefault(folder.name, []).append(path)
    return found


def sweep_files(
    session_factory: Callable[[], Session], root: Path, *, now: datetime
) -> SweepReport:
    """Delete files under `root` that no live attachment row names and that are older than
    `FILE_GRACE` (and, at once, files of rows already purged)."""
    cutoff = (now - FILE_GRACE).timestamp()
    examined = deleted_purged = deleted_orphans = 0
    for paths in _stored_files(root).values():
        names = {p.name.removesuffix(".tmp") for p in paths}
        with session_factory() as session:
            found = session.execute(
                select(Attachment.storage_name, Attachment.purged_at).where(
                    Attachment.storage_name.in_(sorted(names))
                )
            ).all()
            rows: dict[str, datetime | None] = {name: purged for name, purged in found}
        for path in paths:
            examined += 1
            name = path.name.removesuffix(".tmp")
            if name in rows and rows[name] is None and path.suffix != ".tmp":
                continue  # a live paper
            try:
                if name in rows and rows[name] is not None and path.suffix != ".tmp":
                    path.unlink()
                    deleted_purged += 1
                elif path.stat().st_mtime < cutoff:
                    path.unlink()
                    deleted_orphans += 1
            except FileNotFoundError:
                continue
    return SweepReport(examined, deleted_purged, deleted_orphans)


def purged_on(sealed_data: str) -> date | None:
    """The day a tombstone records, or None for live sealed data."""
    if not is_tombstone(sealed_data):
        return None
    return date.fromisoformat(sealed_data.removeprefix(TOMBSTONE_PREFIX))
