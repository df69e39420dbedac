"""The citizen's submission as the view writes it: `prepare_submission` (sealed and signed, no
write), then `store_submission` on `Database.storing()`: on PostgreSQL one statement in
autocommit, on SQLite statements in one write transaction. All of it is written or none of it,
and the day's numbering never skips a number."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, func, select
from sqlalchemy.exc import IntegrityError

from core import services
from core.uploads import UploadLimits, inspect_upload
from storage.files import FileStore
from storage.models import Attachment, Commune, Dossier, DossierCounter, DossierEvent
from storage.runtime import Runtime
from tests.staff_support import png_bytes

NOW = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)  # a Monday, 10:00 in Hà Nội time


def _prepare(runtime: Runtime, draft: str) -> services.Submission:
    with runtime.db.statements() as connection:
        return _prepare_on(connection, runtime, draft)


def _prepare_on(connection: Connection, runtime: Runtime, draft: str) -> services.Submission:
    commune, offered = services.commune_offer(connection, "nhuan-duc", "khai-sinh")
    return services.prepare_submission(
        connection,
        commune=commune,
        offered=offered,
        cleaned={"ho_ten_tre": "Nguyễn Văn Bé"},
        draft=draft,
        poster_id=None,
        lang="vi",
        keys=runtime.keys,
        calendar=runtime.calendar,
        now=NOW,
    )


def _store(runtime: Runtime, submission: services.Submission) -> services.Submitted:
    with runtime.db.storing() as connection:
        return services.store_submission(connection, submission)


def _counter(runtime: Runtime) -> int:
    with runtime.db.reading() as s:
        commune_id = s.scalar(select(Commune.id).where(Commune.slug == "nhuan-duc"))
        value = s.scalar(
            select(DossierCounter.last_value).where(
                DossierCounter.commune_id == commune_id,
                DossierCounter.day == runtime.calendar.local_date(NOW),
            )
        )
        return int(value or 0)


def _rows(runtime: Runtime) -> tuple[int, int]:
    with runtime.db.reading() as s:
        dossiers = s.scalar(select(func.count()).select_from(Dossier)) or 0
        events = s.scalar(select(func.count()).select_from(DossierEvent)) or 0
        return int(dossiers), int(events)


def _attach(runtime: Runtime, draft: str) -> str:
    accepted = inspect_upload(png_bytes(), filename="giấy chứng sinh.png", limits=UploadLimits())
    with runtime.db.writing() as s:
        commune = s.scalar(select(Commune).where(Commune.slug == "nhuan-duc"))
        assert commune is not None
        att = services.accept_upload(
            s, commune=commune, draft=draft, field_name="giay_chung_sinh", accepted=accepted,
            store=FileStore(runtime.upload_dir), keyring=runtime.keys.sealing, now=NOW,
        )  # fmt: skip
        return att.public_id


def test_the_code_takes_the_days_next_number_as_printed_on_paper(runtime: Runtime) -> None:
    day = runtime.calendar.local_date(NOW)
    with runtime.db.writing() as s:
        commune_id = s.scalar(select(Commune.id).where(Commune.slug == "nhuan-duc"))
        s.merge(DossierCounter(commune_id=commune_id, day=day, last_value=9998))
    first = _store(runtime, _prepare(runtime, secrets.token_urlsafe(24)))
    second = _store(runtime, _prepare(runtime, secrets.token_urlsafe(24)))
    assert first.code == f"27517-{day:%y%m%d}-9999"
    assert second.code == f"27517-{day:%y%m%d}-10000"  # as f"{n:04d}": widened, never cut
    with runtime.db.reading() as s:
        stored = s.scalars(select(Dossier.code).where(Dossier.code.like("27517-%"))).all()
        assert {first.code, second.code} <= set(stored)


def test_a_paper_gone_before_the_write_stores_nothing_and_skips_no_number(
    runtime: Runtime,
) -> None:
    draft = secrets.token_urlsafe(24)
    public_id = _attach(runtime, draft)
    submission = _prepare(runtime, draft)
    assert len(submission.paper_ids) == 1
    before, rows = _counter(runtime), _rows(runtime)
    with runtime.db.writing() as s:  # removed from another tab meanwhile
        s.execute(Attachment.__table__.delete().where(Attachment.public_id == public_id))
    with pytest.raises(services.DraftChanged):
        _store(runtime, submission)
    assert (_counter(runtime), _rows(runtime)) == (before, rows)
    done = _store(runtime, _prepare(runtime, secrets.token_urlsafe(24)))
    assert done.code.endswith(f"-{before + 1:04d}")


def test_the_papers_go_with_the_dossier_and_a_second_copy_is_refused(runtime: Runtime) -> None:
    draft = secrets.token_urlsafe(24)
    public_id = _attach(runtime, draft)
    submission = _prepare(runtime, draft)
    done = _store(runtime, submission)
    with runtime.db.reading() as s:
        att = s.scalar(select(Attachment).where(Attachment.public_id == public_id))
        assert att is not None and att.dossier_id == done.dossier_id and att.draft_hash is None
        events = s.scalars(select(DossierEvent).where(DossierEvent.dossier_id == done.dossier_id))
        assert [(e.action, e.to_state) for e in events] == [("submit", "received")]
    before, rows = _counter(runtime), _rows(runtime)
    # The same draft again (a double tap whose papers were not read yet): refused, no trace.
    again = _prepare(runtime, draft)
    with pytest.raises(IntegrityError):
        _store(runtime, services.Submission(**{**_fields(again), "paper_ids": ()}))
    assert (_counter(runtime), _rows(runtime)) == (before, rows)
    with runtime.db.reading(snapshot=False) as s:
        found = services.stored_for_draft(s, done.stored.commune_id, draft)
        assert found is not None and found.public_id == done.stored.public_id


def test_the_write_is_seen_when_committed_at_once_on_postgresql(runtime: Runtime) -> None:
    """On PostgreSQL one statement in autocommit: no transaction (nor the day's counter lock)
    outlives it, and another connection sees the dossier at once. On SQLite the statements are
    one transaction, seen by others only when `storing()` commits it."""
    submission = _prepare(runtime, secrets.token_urlsafe(24))

    def seen(dossier_id: int) -> bool:
        with runtime.db.reading(snapshot=False) as s:  # another connection
            return s.scalar(select(Dossier.id).where(Dossier.id == dossier_id)) is not None

    with runtime.db.storing() as connection:
        done = services.store_submission(connection, submission)
        assert seen(done.dossier_id) == (runtime.db.dialect == "postgresql")
    assert seen(done.dossier_id)


def _fields(submission: services.Submission) -> dict[str, object]:
    return {name: getattr(submission, name) for name in services.Submission.__slots__}


def test_a_submission_takes_one_pooled_connection_on_postgresql(runtime: Runtime) -> None:
    """`Database.submission()`, as the view uses it: on PostgreSQL the reads and the write go
    through one connection checked out once, the write committed on its own (seen by another
    connection while the submission still holds its connection); on SQLite the reads go through
    a read connection and the write is a transaction of its own, committed when it ends."""
    from sqlalchemy import event

    db = runtime.db
    checkouts: list[object] = []

    def counted(_dbapi: object, _record: object, proxy: object) -> None:
        checkouts.append(proxy)

    engines = {db.engine, db.read_engine, db.statement_engine, db._autocommit_engine()}
    for engine in engines:
        event.listen(engine, "checkout", counted)
    try:
        draft = secrets.token_urlsafe(24)
        with db.submission() as connections:
            submission = _prepare_on(connections.reads, runtime, draft)
            with connections.storing() as writing:
                done = services.store_submission(writing, submission)
            held = len(checkouts)
            with db.reading(snapshot=False) as s:  # another connection, while this one is held
                found = services.stored_for_draft(s, done.stored.commune_id, draft)
            assert found is not None and found.public_id == done.stored.public_id
    finally:
        for engine in engines:
            event.remove(engine, "checkout", counted)
    assert held == (1 if db.dialect == "postgresql" else 2)
    assert _rows(runtime)[0] >= 1
