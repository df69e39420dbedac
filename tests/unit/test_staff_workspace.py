"""The workspace's pure parts: queue cursors and filters, the decision payload, typed dates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from core.dossier import DossierState
from core.signing import canonical_bytes, generate_signing_key, sign, verify
from core.workspace import ACTIONABLE, OPEN, Cursor, QueueFilter, decision_payload, parse_day


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)), st.integers(1, 2**62))
def test_cursor_round_trips(day: date, ident: int) -> None:
    assert Cursor.decode(Cursor(day, ident).encode()) == Cursor(day, ident)


@given(st.text(max_size=60))
def test_cursor_never_raises_on_garbage(text: str) -> None:
    result = Cursor.decode(text)
    assert result is None or isinstance(result, Cursor)


def test_filter_defaults_and_links() -> None:
    flt = QueueFilter.from_args({})
    assert flt.states() == ACTIONABLE
    assert DossierState.SUPPLEMENT_REQUESTED not in ACTIONABLE
    assert QueueFilter(state="open").states() == OPEN
    assert QueueFilter(state="returned").states() == (DossierState.RETURNED,)
    full = QueueFilter.from_args(
        {"thu_tuc": "khai-sinh", "trang_thai": "processing", "han": "today", "cua_toi": "1"}
    )
    assert full.args() == {
        "thu_tuc": "khai-sinh",
        "trang_thai": "processing",
        "han": "today",
        "cua_toi": "1",
    }
    assert full.args(han="", sau="2026-03-05.9") == {
        "thu_tuc": "khai-sinh",
        "trang_thai": "processing",
        "cua_toi": "1",
        "sau": "2026-03-05.9",
    }
    assert QueueFilter.from_args({"thu_tuc": "x" * 500}).procedure == "x" * 64


def test_decision_payload_is_the_same_whatever_the_time_zone() -> None:
    hanoi = timezone(timedelta(hours=7))
    at_local = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=hanoi)
    at_utc = at_local.astimezone(UTC)
    at_naive_utc = at_utc.replace(tzinfo=None)  # as SQLite hands it back
    payloads = [
        decision_payload(
            commune_code="27517",
            dossier_code="27517-260302-0001",
            action="refuse",
            from_state="processing",
            to_state="refused",
            reason="Thiếu giấy chứng sinh.",
            actor="nhuanduc.hotich",
            at=moment,
        )
        for moment in (at_local, at_utc, at_naive_utc)
    ]
    assert payloads[0] == payloads[1] == payloads[2]
    assert payloads[0]["at"] == "2026-03-02T02:30:15+00:00"
    assert payloads[0]["new_due_date"] is None
    canonical_bytes(payloads[0])  # canonicalisable: no float, no datetime object


def test_a_signed_decision_binds_every_field() -> None:
    key = generate_signing_key()
    payload = decision_payload(
        commune_code="27517",
        dossier_code="27517-260302-0001",
        action="apology",
        from_state="processing",
        to_state="processing",
        reason="Cần xác minh với xã khác.",
        actor="nhuanduc.hotich",
        at=datetime(2026, 3, 5, 2, 0, tzinfo=UTC),
        new_due_date=date(2026, 3, 10),
    )
    signature = sign(payload, key)
    keys = {key.key_id: key.verify_key}
    assert verify(payload, signature, keys)
    for field, other in (
        ("actor", "nhuanduc.lanhdao"),
        ("reason", "Khác"),
        ("new_due_date", "2026-03-11"),
        ("to", "approved"),
        ("dossier", "27517-260302-0002"),
    ):
        assert not verify({**payload, field: other}, signature, keys), field


def test_typed_dates() -> None:
    assert parse_day("25/03/2026") == date(2026, 3, 25)
    assert parse_day(" 2026-03-25 ") == date(2026, 3, 25)
    assert parse_day("5/3/2026") == date(2026, 3, 5)
    for bad in ("", "31/02/2026", "hôm qua", "2026/03/25", "25-03-2026", "1/2"):
        assert parse_day(bad) is None
