"""The hash-chained audit log: building records and detecting edits, deletions and moves."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from core.audit import (
    GENESIS,
    AuditRecord,
    ChainedRecord,
    audit_time,
    chain_hash,
    detail_json,
    next_record,
    parse_detail,
    verify_chain,
)
from core.signing import canonical_bytes

HANOI = timezone(timedelta(hours=7))
START = datetime(2025, 7, 1, 8, 30, tzinfo=HANOI)

EVENTS = [
    ("cli", "user.create", "user:1", {"username": "canbo1", "role": "officer"}),
    ("citizen", "dossier.submit", "dossier:1", {"code": "27517-250701-0001"}),
    ("user:1", "dossier.open", "dossier:1", {}),
    ("user:1", "dossier.decide", "dossier:1", {"state": "result_ready", "on_time": True}),
    ("user:2", "poster.revoke", "poster:9", {"reason": "dán đè mã QR giả", "count": 1}),
    ("cli", "keys.rotate", "sealing", {"key_id": "a1b2c3d4", "old": None}),
]


def build_chain() -> list[ChainedRecord]:
    chain: list[ChainedRecord] = []
    for i, (actor, action, target, detail) in enumerate(EVENTS):
        chain.append(
            next_record(
                chain[-1] if chain else None,
                commune_id=None if actor == "cli" else 7,
                now=START + timedelta(minutes=i),
                actor=actor,
                action=action,
                target=target,
                detail=detail,
            )
        )
    return chain


def edited(entry: ChainedRecord, rehash: bool = False, **changes: object) -> ChainedRecord:
    record = dataclasses.replace(entry.record, **changes)  # type: ignore[arg-type]  # test data
    return ChainedRecord(record, chain_hash(record) if rehash else entry.hash)


def test_records_link_from_genesis() -> None:
    chain = build_chain()
    assert [entry.record.seq for entry in chain] == [1, 2, 3, 4, 5, 6]
    assert chain[0].record.prev_hash == GENESIS == "0" * 64
    for before, after in zip(chain, chain[1:], strict=False):
        assert after.record.prev_hash == before.hash
    assert chain[0].record.at == "2025-07-01T01:30:00.000000+00:00"


def test_hash_is_sha256_over_the_canonical_bytes_of_every_field() -> None:
    record = build_chain()[3].record
    fields = {
        "seq": 4,
        "commune_id": 7,
        "at": "2025-07-01T01:33:00.000000+00:00",
        "actor": "user:1",
        "action": "dossier.decide",
        "target": "dossier:1",
        "detail": {"state": "result_ready", "on_time": True},
        "prev_hash": record.prev_hash,
    }
    assert chain_hash(record) == hashlib.sha256(canonical_bytes(fields)).hexdigest()


@pytest.mark.parametrize(
    "change",
    [
        {"seq": 5},
        {"commune_id": 8},
        {"commune_id": None},
        {"at": "2025-07-01T01:33:00.000001+00:00"},
        {"actor": "user:2"},
        {"action": "dossier.refuse"},
        {"target": "dossier:2"},
        {"detail": {"state": "refused", "on_time": True}},
        {"detail": {"state": "result_ready", "on_time": 1}},
        {"prev_hash": "1" * 64},
    ],
)
def test_every_field_is_covered_by_the_hash(change: dict[str, object]) -> None:
    record = build_chain()[3].record
    assert chain_hash(dataclasses.replace(record, **change)) != chain_hash(record)  # type: ignore[arg-type]


def test_intact_chain_passes_and_reports_its_head() -> None:
    chain = build_chain()
    check = verify_chain(chain)
    assert check.ok and check.first_bad_seq is None
    assert check.checked == 6 and check.head_seq == 6 and check.head_hash == chain[-1].hash
    assert "6" in check.reason.vi and "nguyên vẹn" in check.reason.vi


def test_empty_log_is_intact() -> None:
    check = verify_chain([])
    assert check.ok and check.checked == 0 and check.head_hash == GENESIS


@pytest.mark.parametrize("seq", [1, 3, 6])
def test_edited_row_is_found(seq: int) -> None:
    chain = build_chain()
    chain[seq - 1] = edited(chain[seq - 1], detail={"note": "sửa lén"})
    check = verify_chain(chain)
    assert not check.ok and check.first_bad_seq == seq
    assert "sửa" in check.reason.vi and f"số {seq}" in check.reason.vi
    assert check.checked == seq - 1 and check.head_seq == seq - 1


def test_edited_and_rehashed_row_breaks_the_next_link() -> None:
    chain = build_chain()
    chain[2] = edited(chain[2], rehash=True, actor="user:9")
    check = verify_chain(chain)
    assert not check.ok and check.first_bad_seq == 4
    assert "does not link" in check.reason.en


def test_edited_prev_hash_is_found() -> None:
    chain = build_chain()
    chain[3] = edited(chain[3], rehash=True, prev_hash=GENESIS)
    check = verify_chain(chain)
    assert not check.ok and check.first_bad_seq == 4


def test_row_with_unhashable_content_counts_as_edited() -> None:
    chain = build_chain()
    chain[1] = edited(chain[1], detail={"amount": 8000.5})
    check = verify_chain(chain)
    assert not check.ok and check.first_bad_seq == 2


@pytest.mark.parametrize("seq", [1, 2, 4])
def test_deleted_row_is_found(seq: int) -> None:
    chain = build_chain()
    del chain[seq - 1]
    check = verify_chain(chain)
    assert not check.ok and check.first_bad_seq == seq
    assert "Thiếu bản ghi số" in check.reason.vi and "missing" in check.reason.en


def test_deleted_row_with_renumbering_is_found() -> None:
    chain = build_chain()
    del chain[2]
    chain[2:] = [edited(e, seq=e.record.seq - 1) for e in chain[2:]]
    check = verify_chain(chain)
    assert not check.ok and check.first_bad_seq == 3


def test_rows_read_out_of_order_are_found() -> None:
    chain = build_chain()
    chain[2], chain[3] = chain[3], chain[2]
    check = verify_chain(chain)
    assert not check.ok and check.first_bad_seq == 3


def test_rows_whose_positions_were_swapped_in_the_table_are_found() -> None:
    chain = build_chain()
    third, fourth = chain[2], chain[3]
    chain[2] = edited(fourth, seq=3)
    chain[3] = edited(third, seq=4)
    check = verify_chain(chain)
    assert not check.ok and check.first_bad_seq == 3


def test_inserted_row_with_a_repeated_seq_is_found() -> None:
    chain = build_chain()
    forged = next_record(
        chain[1], commune_id=7, now=START, actor="user:1", action="dossier.open", target="x"
    )
    chain.insert(2, forged)
    check = verify_chain(chain)
    assert not check.ok and check.first_bad_seq == 3
    assert "out of order or repeated" in check.reason.en


def test_inserted_row_with_renumbering_is_found() -> None:
    chain = build_chain()
    forged = next_record(
        chain[1], commune_id=7, now=START, actor="user:1", action="dossier.open", target="x"
    )
    rest = [edited(e, seq=e.record.seq + 1) for e in chain[2:]]
    check = verify_chain([*chain[:2], forged, *rest])
    assert not check.ok and check.first_bad_seq == 4


def _rewrite_from(chain: list[ChainedRecord], index: int) -> list[ChainedRecord]:
    """What someone with database access can do: change a row and recompute every later hash."""
    rewritten = chain[:index]
    for entry in chain[index:]:
        record = entry.record
        if entry is chain[index]:
            record = dataclasses.replace(record, detail={"state": "refused"})
        record = dataclasses.replace(record, prev_hash=rewritten[-1].hash if rewritten else GENESIS)
        rewritten.append(ChainedRecord(record, chain_hash(record)))
    return rewritten


def test_full_rewrite_is_caught_by_an_anchor_recorded_outside_the_database() -> None:
    chain = build_chain()
    anchors = {5: chain[4].hash}
    rewritten = _rewrite_from(chain, 3)
    assert verify_chain(rewritten).ok  # the limit of a bare hash chain
    check = verify_chain(rewritten, anchors=anchors)
    assert not check.ok and check.first_bad_seq == 5
    assert "checkpoint" in check.reason.en
    assert verify_chain(chain, anchors=anchors).ok


def test_cut_off_tail_is_caught_by_an_anchor() -> None:
    chain = build_chain()
    anchors = {6: chain[5].hash}
    assert verify_chain(chain[:4]).ok
    check = verify_chain(chain[:4], anchors=anchors)
    assert not check.ok and check.first_bad_seq == 5
    assert "record 6" in check.reason.en and "bản ghi số 6" in check.reason.vi


def test_verification_can_resume_after_a_verified_row() -> None:
    chain = build_chain()
    head = verify_chain(chain[:3])
    check = verify_chain(chain[3:], after=(head.head_seq, head.head_hash))
    assert check.ok and check.checked == 3 and check.head_seq == 6
    assert not verify_chain(chain[4:], after=(head.head_seq, head.head_hash)).ok
    assert not verify_chain(chain[3:], after=(3, GENESIS)).ok


def test_plain_tuples_are_accepted() -> None:
    chain = [(entry.record, entry.hash) for entry in build_chain()]
    assert verify_chain(chain).ok


# --- building records ---------------------------------------------------------------------------


def test_audit_time_is_utc_to_the_microsecond() -> None:
    assert audit_time(datetime(2025, 7, 1, 0, 15, 0, 7, tzinfo=HANOI)) == (
        "2025-06-30T17:15:00.000007+00:00"
    )
    assert audit_time(datetime(2025, 7, 1, tzinfo=UTC)) == "2025-07-01T00:00:00.000000+00:00"
    with pytest.raises(ValueError):
        audit_time(datetime(2025, 7, 1, 8, 30))


@pytest.mark.parametrize("value", [8000.5, b"bytes", ["list"], {"nested": 1}])
def test_detail_values_are_short_scalars(value: object) -> None:
    with pytest.raises(TypeError):
        next_record(
            None,
            commune_id=1,
            now=START,
            actor="a",
            action="b",
            target="c",
            detail={"x": value},  # type: ignore[dict-item]  # the point of the test
        )


def test_detail_column_round_trip() -> None:
    detail = {"username": "canbo1", "active": True, "count": 2, "note": None}
    text = detail_json(detail)
    assert text == '{"active":true,"count":2,"note":null,"username":"canbo1"}'
    assert parse_detail(text) == detail
    with pytest.raises(ValueError):
        parse_detail("[1]")
    with pytest.raises(TypeError):
        parse_detail('{"nested": {"a": 1}}')


def test_record_built_from_stored_columns_verifies() -> None:
    """A row read back from the database (detail as JSON text) hashes as it was written."""
    chain = build_chain()
    reread = [
        ChainedRecord(
            AuditRecord(
                seq=e.record.seq,
                commune_id=e.record.commune_id,
                at=e.record.at,
                actor=e.record.actor,
                action=e.record.action,
                target=e.record.target,
                detail=parse_detail(detail_json(e.record.detail)),
                prev_hash=e.record.prev_hash,
            ),
            e.hash,
        )
        for e in chain
    ]
    assert verify_chain(reread).ok
