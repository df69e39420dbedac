"""Fee rules (lệ phí): computed from the procedure's rule and the form, never typed by anyone."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.fees import compute_fee, is_on_time, per_page_amount
from procedures.schema import Fee, FeeKind, Label, ProcedureDefinition

RECEIVED = date(2026, 3, 2)


def _procedure(fee: Fee, code: str = "thu-tuc") -> ProcedureDefinition:
    return ProcedureDefinition(
        code=code,
        name=Label("Thủ tục", "Procedure"),
        legal_basis=("Luật Hộ tịch 2014",),
        documents=(),
        processing_days=0,
        max_processing_days=0,
        fee=fee,
        in_person_result=False,
        agency="ubnd",
        retention_days=365,
    )


FREE = _procedure(Fee(FeeKind.FREE))
SIGNATURE = _procedure(Fee(FeeKind.FIXED, amount=10_000))  # chứng thực chữ ký, per case
EXTRACT = _procedure(Fee(FeeKind.PER_COPY, amount=8_000, quantity_field="so_ban"))  # trích lục
CERTIFIED_FEE = Fee(
    FeeKind.PER_PAGE,
    amount=2_000,
    later_page_amount=1_000,
    later_pages_from=3,
    cap_per_copy=200_000,
    quantity_field="so_ban",
    pages_field="so_trang",
)
CERTIFIED = _procedure(CERTIFIED_FEE)  # chứng thực bản sao từ bản chính
# Birth and death: free on time (60 / 15 days); late, the province's fee (per commune).
BIRTH = _procedure(
    Fee(FeeKind.PER_COMMUNE, free_if_on_time=True, on_time_field="ngay_sinh", on_time_days=60)
)
DEATH = _procedure(
    Fee(FeeKind.PER_COMMUNE, free_if_on_time=True, on_time_field="ngay_chet", on_time_days=15)
)


def test_free_is_free_whatever_the_commune_says() -> None:
    assert compute_fee(FREE, None, {}, received_on=RECEIVED) == 0
    assert compute_fee(FREE, 50_000, {}, received_on=RECEIVED) == 0


def test_fixed_per_case_and_the_communes_own_amount() -> None:
    assert compute_fee(SIGNATURE, None, {}, received_on=RECEIVED) == 10_000
    assert compute_fee(SIGNATURE, 12_000, {"so_ban": 3}, received_on=RECEIVED) == 12_000


@pytest.mark.parametrize(("copies", "fee"), [(1, 8_000), (2, 16_000), (5, 40_000)])
def test_per_copy(copies: int, fee: int) -> None:
    assert compute_fee(EXTRACT, None, {"so_ban": copies}, received_on=RECEIVED) == fee


def test_per_copy_without_a_count_is_one_copy() -> None:
    assert compute_fee(EXTRACT, None, {}, received_on=RECEIVED) == 8_000
    assert compute_fee(EXTRACT, None, {"so_ban": "2"}, received_on=RECEIVED) == 8_000
    assert compute_fee(EXTRACT, None, {"so_ban": True}, received_on=RECEIVED) == 8_000
    assert compute_fee(EXTRACT, 10_000, {"so_ban": 2}, received_on=RECEIVED) == 20_000


@pytest.mark.parametrize(
    ("pages", "one_copy"),
    [
        (0, 0),
        (1, 2_000),
        (2, 4_000),  # pages 1–2 at 2,000 đ
        (3, 5_000),  # from page 3: 1,000 đ
        (10, 12_000),
        (196, 198_000),
        (197, 199_000),
        (198, 200_000),  # exactly the cap
        (199, 200_000),  # capped at 200,000 đ per copy
        (1_000, 200_000),
    ],
)
def test_certified_copy_scale(pages: int, one_copy: int) -> None:
    assert per_page_amount(CERTIFIED_FEE, pages) == one_copy
    values = {"so_trang": pages, "so_ban": 3}
    assert compute_fee(CERTIFIED, None, values, received_on=RECEIVED) == 3 * one_copy


def test_the_cap_is_per_copy_not_per_dossier() -> None:
    values = {"so_trang": 500, "so_ban": 2}
    assert compute_fee(CERTIFIED, None, values, received_on=RECEIVED) == 400_000


def test_a_commune_amount_replaces_the_first_pages_rate_only() -> None:
    # 3 pages at a commune rate of 3,000 đ for pages 1–2: 2 × 3,000 + 1 × 1,000.
    values = {"so_trang": 3, "so_ban": 1}
    assert compute_fee(CERTIFIED, 3_000, values, received_on=RECEIVED) == 7_000


def test_no_cap_means_no_cap() -> None:
    uncapped = replace(CERTIFIED_FEE, cap_per_copy=0)
    assert per_page_amount(uncapped, 1_000) == 2 * 2_000 + 998 * 1_000


@given(st.integers(0, 2_000), st.integers(0, 2_000))
def test_more_pages_never_cost_less_and_never_more_than_the_cap(a: int, b: int) -> None:
    low, high = sorted((a, b))
    assert per_page_amount(CERTIFIED_FEE, low) <= per_page_amount(CERTIFIED_FEE, high)
    assert per_page_amount(CERTIFIED_FEE, high) <= CERTIFIED_FEE.cap_per_copy
    expected = min(2_000 * min(high, 2) + 1_000 * max(high - 2, 0), 200_000)
    assert per_page_amount(CERTIFIED_FEE, high) == expected


@pytest.mark.parametrize(
    ("procedure", "field", "days", "late_fee"),
    [(BIRTH, "ngay_sinh", 60, 5_000), (DEATH, "ngay_chet", 15, 5_000)],
)
def test_on_time_registration_is_free_and_late_pays_the_communes_fee(
    procedure: ProcedureDefinition, field: str, days: int, late_fee: int
) -> None:
    on_the_last_day = {field: (RECEIVED - timedelta(days=days)).isoformat()}
    one_day_late = {field: (RECEIVED - timedelta(days=days + 1)).isoformat()}
    same_day = {field: RECEIVED.isoformat()}
    assert compute_fee(procedure, late_fee, on_the_last_day, received_on=RECEIVED) == 0
    assert compute_fee(procedure, late_fee, same_day, received_on=RECEIVED) == 0
    assert compute_fee(procedure, late_fee, one_day_late, received_on=RECEIVED) == late_fee
    assert is_on_time(procedure.fee, on_the_last_day, RECEIVED)
    assert not is_on_time(procedure.fee, one_day_late, RECEIVED)


def test_a_late_registration_where_the_province_set_no_fee_is_free() -> None:
    late = {"ngay_sinh": (RECEIVED - timedelta(days=400)).isoformat()}
    assert compute_fee(BIRTH, None, late, received_on=RECEIVED) == 0


@pytest.mark.parametrize("value", [None, "", "02/03/2026", "not a date", 20260302])
def test_an_unreadable_event_date_is_not_on_time(value: object) -> None:
    # Validation refuses these before a fee is computed; if one slipped through, the fee is
    # charged (the official can still waive it), never silently dropped.
    values = {"ngay_sinh": value} if value is not None else {}
    assert not is_on_time(BIRTH.fee, values, RECEIVED)
    assert compute_fee(BIRTH, 5_000, values, received_on=RECEIVED) == 5_000


def test_on_time_applies_only_to_rules_that_say_so() -> None:
    recent = {"ngay_sinh": RECEIVED.isoformat()}
    assert not is_on_time(EXTRACT.fee, recent, RECEIVED)
    assert compute_fee(EXTRACT, None, {**recent, "so_ban": 1}, received_on=RECEIVED) == 8_000


def test_a_declared_exempt_group_is_read_only_from_the_named_select() -> None:
    from core.fees import claimed_exemption
    from procedures.catalog import load_catalog

    defn = load_catalog().get("nhan-cha-me-con")
    assert defn is not None and defn.fee.exemption_field == "mien_le_phi"
    assert claimed_exemption(defn, {"mien_le_phi": "ho_ngheo"}) == "ho_ngheo"
    assert claimed_exemption(defn, {"mien_le_phi": ""}) is None
    assert claimed_exemption(defn, {}) is None
    assert claimed_exemption(defn, {"mien_le_phi": "vip"}) is None  # not one of the options
    free = load_catalog().get("ket-hon")
    assert free is not None and claimed_exemption(free, {"mien_le_phi": "ho_ngheo"}) is None
