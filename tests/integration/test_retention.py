"""Retention: the purge removes expired personal data and papers, keeps statistics and the audit.

A fresh install (its own database and uploads folder, so the purge sees only these dossiers) gets
dossiers decided in 2019, beyond the birth registration's 1825-day retention, one decided ten days
ago, one still open since 2019, one withdrawn in 2019, papers of a form never sent, and stray
files. `flask --app wsgi purge` then runs for real. The suite's engine is used (SQLite, or
PostgreSQL with KIOSK_TEST_DATABASE_URL).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.engine import make_url

from admin.operations import check_dossiers
from core import audit_log, retention, services, workspace
from core.accounts import Role
from core.dossier import DossierState
from core.reports import Period, dashboard
from core.sealing import seal
from core.uploads import UploadLimits, inspect_upload
from storage.files import FileStore
from storage.models import (
    Attachment,
    AuditEvent,
    BankTransfer,
    Commune,
    Dossier,
    DossierEvent,
    StatementUpload,
)
from storage.runtime import Runtime
from tests.staff_support import (
    VN,
    identity,
    install,
    local,
    make_user,
    png_bytes,
    postgres_database,
)

TEST_DATABASE_URL = os.environ.get("KIOSK_TEST_DATABASE_URL")
NOW = datetime.now(UTC)
LONG_AGO = local(2019, 3, 4)


@contextmanager
def database(folder: Path) -> Iterator[str]:
    if TEST_DATABASE_URL is None:
        yield f"sqlite:///{folder / 'kiosk.db'}"
        return
    admin = make_url(TEST_DATABASE_URL).set(database="postgres").render_as_string(False)
    with postgres_database(admin) as url:
        yield url


@dataclass
class Filed:
    code: str
    secret: str
    draft: str


class World:
    def __init__(self, app: Flask, runtime: Runtime) -> None:
        self.app, self.rt = app, runtime
        with runtime.db.reading() as s:
            self.commune = services.commune_by_slug(s, "nhuan-duc")
            s.expunge(self.commune)
        uid, _, _ = make_user(runtime, self.commune, Role.OFFICIAL, procedures=("khai-sinh",))
        self.official = identity(runtime, uid)
        self.store = FileStore(runtime.upload_dir)

    def attach(self, draft: str, at: datetime, field: str = "giay_chung_sinh") -> Attachment:
        accepted = inspect_upload(
            png_bytes(), filename="giấy chứng sinh.png", limits=UploadLimits()
        )
        with self.rt.db.writing() as s:
            att = services.accept_upload(
                s,
                commune=s.get(Commune, self.commune.id),
                draft=draft,
                field_name=field,
                accepted=accepted,
                store=self.store,
                keyring=self.rt.keys.sealing,
                now=at,
            )
            s.expunge(att)
            return att

    def file(self, at: datetime) -> Filed:
        draft = secrets.token_urlsafe(24)
        self.attach(draft, at)
        with self.rt.db.writing() as s:
            commune = s.get(Commune, self.commune.id)
            assert commune is not None
            done = services.submit(
                s,
                commune=commune,
                offered=services.offered_procedure(s, commune, "khai-sinh"),
                cleaned={"ho_ten_tre": "Trần Thị Lưu Trữ", "so_dinh_danh_me": "079190012345"},
                draft=draft,
                poster_id=None,
                lang="vi",
                keys=self.rt.keys,
                calendar=self.rt.calendar,
                now=at,
            )
            return Filed(done.dossier.code, done.secret, draft)

    def act(self, code: str, action: str, at: datetime, reason: str | None = None) -> None:
        with self.rt.db.writing() as s:
            workspace.act(
                s,
                self.official,
                code,
                action,
                expected_version=None,
                reason=reason,
                keys=self.rt.keys,
                calendar=self.rt.calendar,
                now=at,
            )

    def supplement(self, code: str, at: datetime) -> None:
        draft = secrets.token_urlsafe(24)
        self.attach(draft, at)
        with self.rt.db.writing() as s:
            dossier = s.scalar(select(Dossier).where(Dossier.code == code))
            assert dossier is not None
            services.submit_supplement(
                s,
                dossier=dossier,
                cleaned={"ho_ten_tre": "Trần Thị Lưu Trữ Sửa"},
                note="Gửi lại giấy chứng sinh rõ hơn",
                draft=draft,
                keys=self.rt.keys,
                calendar=self.rt.calendar,
                now=at,
            )

    def dossier(self, code: str) -> Dossier:
        with self.rt.db.reading() as s:
            row = s.scalar(select(Dossier).where(Dossier.code == code))
            assert row is not None
            s.expunge(row)
            return row

    def stats(self) -> list[tuple[str, int, int, int, int, int]]:
        with self.rt.db.reading() as s:
            board = dashboard(
                s,
                s.get(Commune, self.commune.id),  # type: ignore[arg-type]
                Period(date_of(LONG_AGO) - timedelta(days=1), date_of(NOW)),
                calendar=self.rt.calendar,
                now=NOW,
            )
            return [
                (p.code, p.received, p.in_progress, p.overdue, p.on_time, p.late)
                for p in [*board.procedures, board.total]
            ]


def date_of(moment: datetime) -> date:
    return moment.astimezone(VN).date()


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[World]:
    with database(tmp_path) as url, install(tmp_path / "instance", url) as (app, runtime):
        yield World(app, runtime)


def test_purge_removes_expired_personal_data_and_keeps_statistics_and_audit(
    world: World,
) -> None:
    w = world
    day = timedelta(days=1)
    approved = w.file(LONG_AGO)
    w.act(approved.code, "claim", LONG_AGO + day)
    w.act(approved.code, "approve", LONG_AGO + 2 * day)
    supplemented = w.file(LONG_AGO)
    w.act(supplemented.code, "request_supplement", LONG_AGO + day, "Giấy chứng sinh bị mờ")
    w.supplement(supplemented.code, LONG_AGO + 3 * day)
    w.act(supplemented.code, "claim", LONG_AGO + 4 * day)
    w.act(supplemented.code, "refuse", LONG_AGO + 5 * day, "Không đủ điều kiện")
    still_open = w.file(LONG_AGO)
    recent = w.file(NOW - 20 * day)
    w.act(recent.code, "claim", NOW - 15 * day)
    w.act(recent.code, "approve", NOW - 10 * day)
    withdrawn = w.file(LONG_AGO)
    with w.rt.db.writing() as s:  # a withdrawal sets no closed_at: its last step dates it
        row = s.scalar(select(Dossier).where(Dossier.code == withdrawn.code))
        assert row is not None
        row.state = DossierState.WITHDRAWN
        s.add(
            DossierEvent(
                commune_id=row.commune_id,
                dossier_id=row.id,
                at=LONG_AGO + day,
                action="withdraw",
                from_state="received",
                to_state="withdrawn",
            )
        )
    # A fee transfer whose note names the payer, linked to the approved dossier.
    approved_row = w.dossier(approved.code)
    with w.rt.db.writing() as s:
        upload = StatementUpload(
            commune_id=w.commune.id, sha256="ab" * 32, uploaded_at=LONG_AGO + day, report="[]"
        )
        s.add(upload)
        s.flush()
        s.add(
            BankTransfer(
                commune_id=w.commune.id,
                reference="FT19063000001",
                amount=8000,
                dossier_code=approved.code,
                dossier_id=approved_row.id,
                status="overpaid",
                description_sealed=seal(
                    b"TRAN THI LUU TRU chuyen tien", w.rt.keys.sealing, context=b"t"
                ),
                statement_upload_id=upload.id,
                line_number=1,
                created_at=LONG_AGO + day,
            )
        )
    # Papers of a form given up eight days ago (removed) and of one from yesterday (kept).
    old_draft = w.attach(secrets.token_urlsafe(24), NOW - 8 * day)
    new_draft = w.attach(secrets.token_urlsafe(24), NOW - 1 * day)
    # Stray files: an upload whose transaction never committed, old and new; a cut-short write.
    old_orphan, new_orphan, cut_short = (w.store.new_name() for _ in range(3))
    for name in (old_orphan, new_orphan):
        w.store.write(name, b"sealed bytes")
    tmp = w.store.root / cut_short[:2] / f"{cut_short}.tmp"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(b"half")
    two_days_ago = time.time() - 2 * 86400
    for path in (w.store._path(old_orphan), tmp):
        os.utime(path, (two_days_ago, two_days_ago))

    expired_codes = {approved.code, supplemented.code, withdrawn.code}
    with w.rt.db.reading() as s:
        papers_before = {a.storage_name: a.dossier_id for a in s.scalars(select(Attachment))}
        expired_ids = {
            d.id for d in s.scalars(select(Dossier).where(Dossier.code.in_(expired_codes)))
        }
        expired_papers = [n for n, d in papers_before.items() if d in expired_ids]
        status_before = services.lookup_status(s, approved.code, approved.secret)
        assert status_before is not None
        steps_before = [(st.state, st.at) for st in status_before.steps]
    assert len(expired_papers) == 4  # one each, and the supplement's paper
    stats_before = w.stats()
    assert stats_before[-1][1] >= 5  # the five above and the demo install's own
    with w.rt.db.reading() as s:
        audit_before = audit_log.head(s)

    dry = w.app.test_cli_runner().invoke(args=["purge", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "Would purge 3 dossier(s) and 1 abandoned upload(s)." in dry.output
    assert all(code in dry.output for code in expired_codes)
    assert all(w.store.exists(n) for n in expired_papers)
    assert w.dossier(approved.code).purged_at is None

    result = w.app.test_cli_runner().invoke(args=["purge"])
    assert result.exit_code == 0, result.output
    assert "Purged 3 dossier(s): 1 supplement(s), 4 paper(s) (4 file(s) deleted)" in result.output
    assert "1 transfer note(s)" in result.output

    for filed in (approved, supplemented, withdrawn):
        row = w.dossier(filed.code)
        assert retention.is_tombstone(row.sealed_data) and row.purged_at is not None
        assert retention.purged_on(row.sealed_data) in {NOW.date(), datetime.now(UTC).date()}
        # Code, procedure, state, dates and signature stay: statistics and receipts still work.
        assert row.signature and row.content_hash and row.state != DossierState.RECEIVED
    for filed in (still_open, recent):
        row = w.dossier(filed.code)
        assert row.purged_at is None and not retention.is_tombstone(row.sealed_data)
    with w.rt.db.reading() as s:
        events = s.scalars(
            select(DossierEvent).where(DossierEvent.dossier_id.in_(expired_ids))
        ).all()
        assert events and all(e.sealed_data is None for e in events)
        for att in s.scalars(select(Attachment).where(Attachment.dossier_id.in_(expired_ids))):
            assert att.purged_at is not None and att.name_sealed == ""
        transfer = s.scalar(select(BankTransfer).where(BankTransfer.dossier_id.in_(expired_ids)))
        assert transfer is not None and transfer.description_sealed is None
        assert s.get(Attachment, old_draft.id) is None
        assert s.get(Attachment, new_draft.id) is not None
        # What is left verifies; what was purged is counted as purged, not as broken.
        check = check_dossiers(s, w.rt.keys.sealing)
        assert check.ok and check.purged == 3 and check.checked >= 2
        # The audit chain is whole and says what was purged, by code, without personal data.
        assert audit_log.verify(s).ok
        purges = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "dossier.purge").order_by(AuditEvent.seq)
        ).all()
        assert {p.detail for p in purges} and len(purges) == 3
        assert all(p.seq > audit_before[0] for p in purges)
        assert all("Trần" not in p.detail and "079190012345" not in p.detail for p in purges)
        assert {f"dossier:{i}" for i in expired_ids} == {p.target for p in purges}
        # The citizen's status page still shows the states and dates.
        status_after = services.lookup_status(s, approved.code, approved.secret)
        assert status_after is not None
        assert [(st.state, st.at) for st in status_after.steps] == steps_before
    assert not any(w.store.exists(n) for n in expired_papers)
    assert not w.store.exists(old_draft.storage_name)
    assert w.store.exists(new_draft.storage_name)
    assert not w.store.exists(old_orphan) and not tmp.exists()
    assert w.store.exists(new_orphan)
    assert w.stats() == stats_before

    with w.rt.db.reading() as s:
        head_after = audit_log.head(s)
    again = w.app.test_cli_runner().invoke(args=["purge"])
    assert again.exit_code == 0
    assert "Purged 0 dossier(s)" in again.output
    with w.rt.db.reading() as s:
        assert audit_log.head(s) == head_after  # nothing to do, nothing recorded
