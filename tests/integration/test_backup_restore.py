"""Restore drill: a backup taken while citizens are submitting restores to an intact database.

A thread files dossiers (with a sealed paper each) through the real service without pause; the
`backup` command runs in the middle of it. The backup is restored with `restore` into a second,
empty install that has the same keys (as a commune restoring onto a new machine would), and then:
every dossier committed before the backup started is there, every dossier in it unseals and its
signature verifies with its commune's keys, every paper named by a row is in the copy of the
uploads folder, and the audit chain is intact. Restoring over a database that holds data is
refused without --force.

The engine is the suite's: SQLite by default, PostgreSQL (pg_dump / pg_restore) when
KIOSK_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from admin.operations import check_dossiers
from core import audit_log, services
from core.sealing import unseal_file_bytes
from storage.files import FileStore
from storage.models import Attachment, Commune, Dossier
from storage.runtime import Runtime
from tests.staff_support import install, make_dossier_with_file, postgres_database

TEST_DATABASE_URL = os.environ.get("KIOSK_TEST_DATABASE_URL")


@contextmanager
def database(folder: Path, name: str) -> Iterator[str]:
    if TEST_DATABASE_URL is None:
        yield f"sqlite:///{folder / name}"
        return
    admin = make_url(TEST_DATABASE_URL).set(database="postgres").render_as_string(False)
    with postgres_database(admin) as url:
        yield url


def demo_commune(runtime: Runtime) -> Commune:
    with runtime.db.reading() as s:
        commune = services.commune_by_slug(s, "nhuan-duc")
        s.expunge(commune)
        return commune


def codes(runtime: Runtime) -> set[str]:
    with runtime.db.reading() as s:
        return set(s.scalars(select(Dossier.code)))


@pytest.fixture()
def live(tmp_path: Path) -> Iterator[tuple[Flask, Runtime]]:
    with database(tmp_path, "live.db") as url, install(tmp_path / "live", url) as pair:
        yield pair


def test_restore_drill_while_submissions_are_written(
    live: tuple[Flask, Runtime], tmp_path: Path
) -> None:
    app, runtime = live
    commune = demo_commune(runtime)
    committed: list[str] = []
    failures: list[BaseException] = []
    stop = threading.Event()
    enough = threading.Event()

    def writer() -> None:
        try:
            while not stop.is_set():
                code, _ = make_dossier_with_file(runtime, commune, now=datetime.now(UTC))
                committed.append(code)
                if len(committed) >= 8:
                    enough.set()
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            failures.append(exc)
            enough.set()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    assert enough.wait(60), "the writer did not get going"
    before_backup = set(committed)
    backup_file = tmp_path / "backups" / "kiosk.backup"
    result = app.test_cli_runner().invoke(args=["backup", "--out", str(backup_file)])
    # Let a few more land after the backup, then stop: they must not be in it.
    target = len(committed) + 3
    while len(committed) < target and not failures:
        threading.Event().wait(0.01)
    stop.set()
    thread.join(60)
    assert not failures, failures
    assert result.exit_code == 0, result.output
    assert backup_file.exists() and backup_file.stat().st_size > 0
    assert not list(backup_file.parent.glob("*.part"))

    # Papers: copied after the database backup, as the backup command asks.
    uploads_copy = tmp_path / "restored" / "uploads"
    shutil.copytree(runtime.upload_dir, uploads_copy)

    restored_instance = tmp_path / "restored"
    shutil.copytree(runtime.instance_path / "keys", restored_instance / "keys")
    with database(tmp_path, "restored.db") as url:
        from application import create_app

        config = {
            "TESTING": True,
            "INSTANCE_PATH": str(restored_instance),
            "DATABASE_URL": url,
            "UPLOAD_DIR": str(uploads_copy),
            "PUBLIC_BASE_URL": "http://kiosk.test",
        }
        restored_app = create_app(config, require_keys=True)
        restored: Runtime = restored_app.extensions["kiosk"]
        try:
            out = restored_app.test_cli_runner().invoke(
                args=["restore", "--from", str(backup_file)]
            )
            assert out.exit_code == 0, out.output
            assert "0 failing" in out.output and "Audit chain: intact" in out.output

            in_backup = codes(restored)
            assert before_backup <= in_backup, "a dossier committed before the backup is missing"
            assert in_backup <= set(committed) | codes(runtime)
            with restored.db.reading() as s:
                check = check_dossiers(s, restored.keys.sealing)
                assert check.ok, check.bad
                assert check.checked == s.scalar(select(func.count()).select_from(Dossier))
                assert check.checked >= len(before_backup)
                assert audit_log.verify(s).ok
                store = FileStore(uploads_copy)
                papers = list(
                    s.scalars(select(Attachment).where(Attachment.dossier_id.is_not(None)))
                )
                assert len(papers) >= len(before_backup)
                for att in papers:
                    data = unseal_file_bytes(
                        store.read(att.storage_name),
                        restored.keys.sealing,
                        context=f"file:{att.commune_id}:{att.storage_name}".encode(),
                    )
                    assert len(data) == att.size

            # The restored install serves: a new dossier gets the next code of the day.
            code, _ = make_dossier_with_file(restored, demo_commune(restored))
            assert code not in in_backup

            # A database that holds data is not replaced without --force ...
            again = restored_app.test_cli_runner().invoke(
                args=["restore", "--from", str(backup_file)]
            )
            assert again.exit_code != 0
            assert "--force" in again.output
            assert code in codes(restored)
            # ... and with --force it is, entirely.
            forced = restored_app.test_cli_runner().invoke(
                args=["restore", "--from", str(backup_file), "--force"]
            )
            assert forced.exit_code == 0, forced.output
            assert codes(restored) == in_backup
        finally:
            restored.db.dispose()


def test_restore_refuses_a_file_that_is_not_a_backup(
    live: tuple[Flask, Runtime], tmp_path: Path
) -> None:
    app, runtime = live
    junk = tmp_path / "not-a-backup"
    junk.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    before = codes(runtime)
    result = app.test_cli_runner().invoke(args=["restore", "--from", str(junk), "--force"])
    assert result.exit_code != 0
    assert codes(runtime) == before
