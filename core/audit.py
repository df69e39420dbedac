"""The audit log (nhật ký kiểm toán): append-only and hash-chained, so nothing vanishes unseen.

Who opened which dossier, who decided what, which poster was revoked: every such event is a row,
and the log is the evidence the commune shows an inspector, or the Ministry of Public Security
within 72 hours of a personal-data breach (NĐ 13/2023). Evidence is worth something only if
editing or deleting a row after the fact is noticed, so each row carries the hash of the row before
it::

    hash(n) = SHA-256( canonical_bytes({seq, commune_id, at, actor, action, target, detail,
                                         prev_hash = hash(n − 1)}) )       hash(0) = GENESIS

`verify_chain` recomputes every link: an edited row no longer matches its hash, a deleted row
leaves a gap in `seq` or a broken link, a moved or inserted row breaks the order or a link.

One chain per install, not one per commune: with a single dense sequence, "no row was deleted" is
one check over one list. Per-commune chains would each need their own proof that no row was cut
from their end, and a whole commune's chain could vanish without a trace. The price is that appends
are serialised install-wide (the writer reads the last row in its transaction and the primary key
on `seq` makes a concurrent append fail and retry rather than fork the chain); audit events are a
handful per dossier, far below what that costs even for a whole province.

What a hash chain alone cannot prove: someone with write access to the database could rewrite a
row and recompute every later hash, or cut rows off the end. Against that, the head of the chain
(its last `seq` and hash) is written down elsewhere from time to time, in a signed report or a
printed register, and passed back to `verify_chain` as an anchor: a rewritten past no longer
reaches the recorded head, and a cut-off tail no longer reaches its `seq`.

This module is the pure part: records, hashes, verification. Writing rows is the caller's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from core.signing import canonical_bytes
from core.text import Message

GENESIS = "0" * 64

DetailValue = str | int | bool | None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One event: who (`actor`) did what (`action`) to what (`target`), when, and details.

    `at` is an ISO 8601 string (see `audit_time`), stored and hashed exactly as written; `detail`
    holds short scalar facts (never personal data in clear: ids and codes, not names).
    """

    seq: int
    commune_id: int | None
    at: str
    actor: str
    action: str
    target: str
    detail: Mapping[str, DetailValue]
    prev_hash: str

    def hashed_fields(self) -> dict[str, object]:
        return {
            "seq": self.seq,
            "commune_id": self.commune_id,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "detail": dict(self.detail),
            "prev_hash": self.prev_hash,
        }


class ChainedRecord(NamedTuple):
    """A record as stored: the record and the hash stored beside it."""

    record: AuditRecord
    hash: str


def chain_hash(record: AuditRecord) -> str:
    """SHA-256 (hex) over canonical_bytes of all the record's fields, prev_hash included."""
    return hashlib.sha256(canonical_bytes(record.hashed_fields())).hexdigest()


def audit_time(now: datetime) -> str:
    """`now` as the log writes it: UTC, ISO 8601 to the microsecond.

    For example "2025-07-01T01:30:00.000000+00:00" for 08:30 in Hà Nội.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("Audit times are timezone-aware")
    return now.astimezone(UTC).isoformat(timespec="microseconds")


def detail_json(detail: Mapping[str, DetailValue]) -> str:
    """The detail as canonical JSON text, for a database column; read back with `parse_detail`."""
    return canonical_bytes(_checked_detail(detail)).decode("utf-8")


def parse_detail(text: str) -> dict[str, DetailValue]:
    """The detail mapping of a stored row (ValueError if the column does not hold one)."""
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("An audit detail is a JSON object")
    return _checked_detail(value)


def next_record(
    previous: ChainedRecord | None,
    *,
    commune_id: int | None,
    now: datetime,
    actor: str,
    action: str,
    target: str,
    detail: Mapping[str, DetailValue] | None = None,
) -> ChainedRecord:
    """The record that follows `previous` (the last stored row, None for the first) and its hash."""
    record = AuditRecord(
        seq=1 if previous is None else previous.record.seq + 1,
        commune_id=commune_id,
        at=audit_time(now),
        actor=actor,
        action=action,
        target=target,
        detail=_checked_detail(detail or {}),
        prev_hash=GENESIS if previous is None else previous.hash,
    )
    return ChainedRecord(record, chain_hash(record))


def _checked_detail(detail: Mapping[str, object]) -> dict[str, DetailValue]:
    checked: dict[str, DetailValue] = {}
    for key, value in detail.items():
        if not isinstance(key, str):
            raise TypeError(f"Audit detail keys are strings, not {type(key).__name__}")
        if value is not None and not isinstance(value, str | int | bool):
            raise TypeError(
                f"Audit detail {key!r} must be text, an integer, true/false or null, "
                f"not {type(value).__name__}"
            )
        checked[key] = value
    return checked


# --- verification -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """The outcome of verifying the log: where it first breaks and why, or how much was proved."""

    ok: bool
    first_bad_seq: int | None
    reason: Message
    checked: int  # rows verified before the first break (all of them when ok)
    head_seq: int  # last good row; record it as an anchor for the next check
    head_hash: str


def verify_chain(
    entries: Iterable[ChainedRecord | tuple[AuditRecord, str]],
    *,
    after: tuple[int, str] | None = None,
    anchors: Mapping[int, str] | None = None,
) -> ChainCheck:
    """Verify stored rows, given in the order of their `seq`.

    By default the rows start at seq 1 from GENESIS. `after=(seq, hash)` verifies only the rows
    that follow an already verified row. `anchors` maps seq → hash recorded outside the database;
    a row that differs from its anchor, or a log that ends before an anchor's seq, is a break.
    """
    expected_seq, expected_prev = (1, GENESIS) if after is None else (after[0] + 1, after[1])
    head_seq, head_hash = expected_seq - 1, expected_prev
    anchors = anchors or {}
    checked = 0

    def broken(seq: int, reason: Message) -> ChainCheck:
        return ChainCheck(False, seq, reason.format(seq=seq), checked, head_seq, head_hash)

    for record, stored_hash in entries:
        seq = record.seq
        if not isinstance(seq, int) or isinstance(seq, bool):
            return broken(expected_seq, _EDITED)
        if seq < expected_seq:
            return broken(seq, _OUT_OF_ORDER)
        if seq > expected_seq:
            return broken(expected_seq, _MISSING)
        if record.prev_hash != expected_prev:
            return broken(seq, _BROKEN_LINK)
        try:
            recomputed = chain_hash(record)
        except (TypeError, ValueError):
            recomputed = None
        if recomputed != stored_hash:
            return broken(seq, _EDITED)
        if seq in anchors and anchors[seq] != stored_hash:
            return broken(seq, _ANCHOR_DIFFERS)
        checked += 1
        head_seq, head_hash = seq, stored_hash
        expected_seq, expected_prev = seq + 1, stored_hash

    beyond = [seq for seq in anchors if seq > head_seq]
    if beyond:
        return ChainCheck(
            False,
            head_seq + 1,
            _TRUNCATED.format(seq=head_seq + 1, anchor=max(beyond)),
            checked,
            head_seq,
            head_hash,
        )
    return ChainCheck(True, None, _INTACT.format(count=checked), checked, head_seq, head_hash)


_INTACT = Message(
    vi="Nhật ký kiểm toán nguyên vẹn: đã kiểm tra {count} bản ghi, chuỗi mã băm khớp hoàn toàn.",
    en="The audit log is intact: {count} records checked, every hash link matches.",
)
_MISSING = Message(
    vi=(
        "Thiếu bản ghi số {seq}: bản ghi này đã bị xóa hoặc bị chuyển chỗ. "
        "Đối chiếu với bản sao lưu gần nhất để biết nội dung bị mất."
    ),
    en=(
        "Record {seq} is missing: it was deleted or moved. "
        "Compare with the latest backup to find what was lost."
    ),
)
_OUT_OF_ORDER = Message(
    vi=(
        "Bản ghi số {seq} nằm sai thứ tự hoặc bị lặp lại: có bản ghi bị chèn thêm hoặc bị đảo chỗ."
    ),
    en="Record {seq} is out of order or repeated: a record was inserted or moved.",
)
_BROKEN_LINK = Message(
    vi=(
        "Bản ghi số {seq} không nối đúng vào bản ghi liền trước: bản ghi trước đó đã bị thay thế "
        "hoặc xóa, hoặc bản ghi này được chèn vào sau."
    ),
    en=(
        "Record {seq} does not link to the record before it: that record was replaced or "
        "deleted, or this one was inserted afterwards."
    ),
)
_EDITED = Message(
    vi="Bản ghi số {seq} đã bị sửa sau khi ghi: mã băm lưu kèm không khớp với nội dung.",
    en="Record {seq} was changed after it was written: its stored hash does not match its content.",
)
_ANCHOR_DIFFERS = Message(
    vi=(
        "Mã băm của bản ghi số {seq} khác với mốc kiểm tra đã lưu ngoài cơ sở dữ liệu: "
        "nhật ký đến bản ghi này đã bị viết lại."
    ),
    en=(
        "The hash of record {seq} differs from the checkpoint recorded outside the database: "
        "the log up to this record was rewritten."
    ),
)
_TRUNCATED = Message(
    vi=(
        "Nhật ký dừng trước bản ghi số {seq}, nhưng mốc kiểm tra đã ghi nhận đến bản ghi số "
        "{anchor}: các bản ghi cuối đã bị xóa."
    ),
    en=(
        "The log ends before record {seq}, but a checkpoint recorded record {anchor}: "
        "the last records were deleted."
    ),
)
