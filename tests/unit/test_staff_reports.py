"""The dashboard's pure parts: CSV cells that never run as formulas, periods, working days."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.deadlines import WorkCalendar
from core.reports import Period, csv_bytes, csv_cell, working_days_taken

VN = ZoneInfo("Asia/Ho_Chi_Minh")
CAL = WorkCalendar()


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ('=HYPERLINK("http://x","bấm")', '\'=HYPERLINK("http://x","bấm")'),
        ("+84 912 345 678", "'+84 912 345 678"),
        ("-5", "'-5"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\r=1", "'\r=1"),
        ("Bảng tin UBND xã", "Bảng tin UBND xã"),
        ("a=b", "a=b"),
        (12, "12"),
        (-3, "-3"),  # a number is never a formula
        (2.25, "2.2"),
        (None, ""),
        (True, "1"),
    ],
)
def test_csv_cell(value: object, cell: str) -> None:
    assert csv_cell(value) == cell


@given(st.text())
def test_no_text_cell_starts_a_formula(text: str) -> None:
    cell = csv_cell(text)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert cell in (text, "'" + text)


def test_csv_is_utf8_with_bom_crlf_and_round_trips_vietnamese() -> None:
    data = csv_bytes([["Tên thủ tục", "Số"], ["Đăng ký khai sinh, trích lục", 3], ["=x", -1]])
    assert data.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in data
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows == [["Tên thủ tục", "Số"], ["Đăng ký khai sinh, trích lục", "3"], ["'=x", "-1"]]


def test_period_parsing_falls_back_to_this_month() -> None:
    today = date(2026, 3, 17)
    assert Period.parse(None, None, today=today) == Period(date(2026, 3, 1), today)
    assert Period.parse("2026-01-01", "2026-02-28", today=today) == Period(
        date(2026, 1, 1), date(2026, 2, 28)
    )
    for first, last in (("2026-02-30", "2026-03-01"), ("2026-03-10", "2026-03-01"), ("x", "")):
        assert Period.parse(first, last, today=today) == Period(date(2026, 3, 1), today)
    assert Period.parse("2020-01-01", "2026-01-01", today=today) == Period(date(2026, 3, 1), today)


def test_period_bounds_are_local_days_in_utc() -> None:
    start, end = Period(date(2026, 3, 1), date(2026, 3, 31)).bounds(CAL)
    assert start == datetime(2026, 2, 28, 17, 0, tzinfo=UTC)
    assert end == datetime(2026, 3, 31, 17, 0, tzinfo=UTC)


def test_working_days_taken_skip_weekends_and_tet() -> None:
    monday = datetime(2026, 3, 2, 9, 0, tzinfo=VN)
    assert working_days_taken(CAL, monday, date(2026, 3, 2)) == 0
    assert working_days_taken(CAL, monday, date(2026, 3, 6)) == 4
    assert working_days_taken(CAL, monday, date(2026, 3, 9)) == 5  # the weekend is not counted
    after_three = datetime(2026, 3, 6, 16, 0, tzinfo=VN)  # Friday after 15:00: counts from Monday
    assert working_days_taken(CAL, after_three, date(2026, 3, 9)) == 0
    before_tet = datetime(2026, 2, 13, 9, 0, tzinfo=VN)  # Friday before Tết 2026
    # Tết Bính Ngọ: 16–20 February 2026 off, back on Monday 23 February.
    assert working_days_taken(CAL, before_tet, date(2026, 2, 23)) == 1
