"""The audit log in the database (nhật ký kiểm toán): appending to the chain, and checking it.

`core.audit` defines the chain: each row carries the hash of the one before it, so an edited,
deleted, moved or inserted row is found by recomputing the links. This module is its database
side: `record` appends a row in the caller's transaction, `verify` streams every row back through
`core.audit.verify_chain`.

Appending reads the last row and writes the next `seq`; two transactions doing that at once would
both take the same `seq` (one then fails on the primary key) or fork the chain. So appenders are
serialised for the length of their transaction:

- on PostgreSQL with a transaction-scoped advisory lock (`pg_advisory_xact_lock`), taken before
  the last row is read and released at commit or rollback;
- on SQLite every write transaction already holds the database's single write lock from its
  `BEGIN IMMEDIATE` (storage.database), so there is nothing more to take.

Because the lock is held until commit, a transaction records its audit event *last*, after its
other row changes: every transaction then takes row locks first and the audit lock second, always
in that order, so two of them can never wait on each other in a circle.

Never record inside a read-only session (`Database.reading()`): on SQLite it would try to upgrade
a deferred transaction, which can fail with "database is locked" under load.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Mapping
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from core.audit import (
    GENESIS,
    AuditRecord,
    ChainCheck,
    ChainedRecord,
    DetailValue,
    audit_time,
    chain_hash,
    detail_json,
    parse_detail,
    verify_chain,
)
from storage.models import AuditEvent

# The advisory lock's key: any constant unique within the database ("kioskaud" in ASCII).
AUDIT_LOCK_KEY = 0x6B696F736B617564

_MAX = {"actor": 80, "action": 64, "target": 120}


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str,
    commune_id: int | None,
    detail: Mapping[str, DetailValue] | None = None,
    now: datetime,
) -> AuditEvent:
    """Append one event to the chain in the caller's (write) transaction and return its row.

    `actor` is who acted ("user:12 nhuanduc.hotich", "cli", "citizen"), `action` a dotted verb
    ("dossier.approve"), `target` what it was done to ("dossier:42"), `detail` a few scalar facts
    (ids and codes, never personal data in clear).
    """
    # What was done *to* may come from an address a stranger typed (a denied access names it):
    # no control character goes into the chain (PostgreSQL refuses NUL in text).
    actor, target = _CONTROL.sub("", actor), _CONTROL.sub("", target)
    for name, value in (("actor", actor), ("action", action), ("target", target)):
        if not value or len(value) > _MAX[name]:
            raise ValueError(f"audit {name} must be 1–{_MAX[name]} characters, got {value!r}")
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_LOCK_KEY})
    last = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    stored_detail = detail_json(detail or {})
    rec = AuditRecord(
        seq=1 if last is None else int(last.seq) + 1,
        commune_id=commune_id,
        at=audit_time(now),
        actor=actor,
        action=action,
        target=target,
        detail=parse_detail(stored_detail),
        prev_hash=GENESIS if last is None else str(last.hash),
    )
    row = AuditEvent(
        seq=rec.seq,
        commune_id=commune_id,
        at=rec.at,
        actor=actor,
        action=action,
        target=target,
        detail=stored_detail,
        prev_hash=rec.prev_hash,
        hash=chain_hash(rec),
    )
    session.add(row)
    session.flush()
    return row


def stored_records(session: Session, *, after_seq: int = 0) -> Generator[ChainedRecord, None, None]:
    """Every row after `after_seq`, in `seq` order, as the chain sees it (streamed: a server-side
    cursor on PostgreSQL, closed when the caller stops early or closes the generator)."""
    result = session.execute(
        select(AuditEvent).where(AuditEvent.seq > after_seq).order_by(AuditEvent.seq),
        execution_options={"yield_per": 2000},
    )
    try:
        for row in result.scalars():
            yield ChainedRecord(as_record(row), row.hash)
            session.expunge(row)  # keep memory flat over millions of rows
    finally:
        result.close()


def as_record(row: AuditEvent) -> AuditRecord:
    """The chain record a stored row stands for. A detail that is not a JSON object any more
    (edited by hand) is kept as text, so its hash no longer matches and the row shows as edited."""
    detail: Mapping[str, DetailValue]
    try:
        detail = parse_detail(row.detail)
    except (ValueError, TypeError):
        detail = {"unreadable detail": row.detail}
    return AuditRecord(
        seq=row.seq,
        commune_id=row.commune_id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        target=row.target,
        detail=detail,
        prev_hash=row.prev_hash,
    )


def verify(session: Session, *, anchors: Mapping[int, str] | None = None) -> ChainCheck:
    """Check the whole chain from its first row; `anchors` are seq → hash written down elsewhere."""
    rows = stored_records(session)
    try:
        return verify_chain(rows, anchors=anchors)
    finally:
        rows.close()  # verification stops at the first break: release the cursor now


def head(session: Session) -> tuple[int, str]:
    """The last row's seq and hash (0 and GENESIS for an empty log): an anchor to write down."""
    last = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    return (0, GENESIS) if last is None else (int(last.seq), str(last.hash))
