"""Working days and due dates: holidays, the 15:00 rule, pauses, deadline status, apologies."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import deadlines
from core.deadlines import DeadlineStatus, WorkCalendar

VN = ZoneInfo("Asia/Ho_Chi_Minh")
CAL = WorkCalendar()


def at(y: int, m: int, d: int, hh: int = 10, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=VN)


# --- The calendar the `holidays` package gives ---------------------------------------------------


@pytest.mark.parametrize(
    "day",
    [
        # Tết Bính Ngọ 2026: eve + days 1–4, Monday 16 to Friday 20 February.
        *(date(2026, 2, d) for d in range(16, 21)),
        # Tết Đinh Mùi 2027: 29 Tết Thursday 4 February to Wednesday 10 February (days falling on
        # the weekend are compensated on the following days).
        *(date(2027, 2, d) for d in (4, 5, 8, 9, 10)),
        date(2026, 1, 1),
        date(2026, 4, 27),  # Giỗ Tổ 10/3 lunar is Sunday 26 April 2026: off on Monday
        date(2027, 4, 16),  # Giỗ Tổ 2027, a Friday
        date(2026, 4, 30),
        date(2026, 5, 1),
        date(2027, 4, 30),
        date(2027, 5, 3),  # 1/5/2027 is a Saturday: off on Monday
        date(2026, 9, 1),  # 2/9/2026 is a Wednesday, the adjacent day is Tuesday 1/9
        date(2026, 9, 2),
        date(2027, 9, 2),  # 2/9/2027 is a Thursday, the adjacent day is Friday 3/9
        date(2027, 9, 3),
        date(2024, 4, 29),  # swapped in 2024 with Saturday 4 May (official dispatch 2450/VPCP)
    ],
)
def test_days_off(day: date) -> None:
    assert CAL.is_working_day(day) is False
    assert deadlines.is_working_day(day) is False


@pytest.mark.parametrize(
    "day",
    [
        date(2026, 2, 13),  # the Friday before Tết 2026
        date(2026, 2, 23),  # the Monday after
        date(2027, 2, 3),  # the Wednesday before Tết 2027
        date(2027, 2, 11),  # the Thursday after
        date(2026, 4, 29),
        date(2026, 9, 3),
        date(2024, 5, 4),  # a Saturday worked to make up for 29 April 2024
    ],
)
def test_working_days(day: date) -> None:
    assert CAL.is_working_day(day) is True


@pytest.mark.parametrize("day", [date(2026, 3, 7), date(2026, 3, 8), date(2027, 2, 6)])
def test_weekends_are_not_working_days(day: date) -> None:
    assert day.weekday() >= 5
    assert CAL.is_working_day(day) is False


def test_holiday_names_are_vietnamese() -> None:
    assert CAL.holiday_name(date(2026, 2, 17)) == "Tết Nguyên Đán"
    assert CAL.holiday_name(date(2026, 9, 2)) == "Quốc khánh"
    assert CAL.holiday_name(date(2026, 3, 2)) is None


# --- Install adjustments -------------------------------------------------------------------------


def test_extra_days_off_and_working_days_win() -> None:
    cal = WorkCalendar(
        extra_days_off=[date(2026, 1, 2)], extra_working_days=[date(2026, 1, 10), date(2026, 5, 1)]
    )
    assert cal.is_working_day(date(2026, 1, 2)) is False
    assert cal.holiday_name(date(2026, 1, 2)) == "Ngày nghỉ theo thông báo"
    assert cal.is_working_day(date(2026, 1, 10)) is True  # a Saturday made a working day
    assert cal.is_working_day(date(2026, 5, 1)) is True
    # Received Wednesday 31/12/2025: 1/1 is a holiday, 2/1 an extra day off.
    assert cal.due_date(at(2025, 12, 31), 1) == date(2026, 1, 5)
    assert CAL.due_date(at(2025, 12, 31), 1) == date(2026, 1, 2)


def test_from_settings_reads_lists_strings_and_dates() -> None:
    cal = WorkCalendar.from_settings(
        {"EXTRA_DAYS_OFF": "2026-01-02, 2026-02-12", "EXTRA_WORKING_DAYS": [date(2026, 1, 10)]}
    )
    assert cal.extra_days_off == {date(2026, 1, 2), date(2026, 2, 12)}
    assert cal.extra_working_days == {date(2026, 1, 10)}
    empty = WorkCalendar.from_settings({})
    assert empty.extra_days_off == frozenset() and empty.extra_working_days == frozenset()


@pytest.mark.parametrize(
    ("settings_", "reason"),
    [
        ({"EXTRA_DAYS_OFF": ["2026-13-01"]}, "EXTRA_DAYS_OFF: '2026-13-01' is not a date"),
        ({"EXTRA_WORKING_DAYS": 20260110}, "EXTRA_WORKING_DAYS must be a list of dates"),
        ({"EXTRA_DAYS_OFF": [at(2026, 1, 2)]}, "is a moment, not a day"),
        (
            {"EXTRA_DAYS_OFF": ["2026-01-10"], "EXTRA_WORKING_DAYS": ["2026-01-10"]},
            "both as days off and as working days: 2026-01-10",
        ),
    ],
)
def test_from_settings_refuses_bad_configuration(settings_: dict[str, object], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        WorkCalendar.from_settings(settings_)


def test_a_calendar_with_no_working_day_is_refused() -> None:
    every_day = [date(2026, 1, 1) + timedelta(days=i) for i in range(800)]
    cal = WorkCalendar(extra_days_off=every_day)
    with pytest.raises(ValueError, match="no working day within a year"):
        cal.add_working_days(date(2026, 1, 1), 1)


# --- The 15:00 rule and the received day ---------------------------------------------------------


@pytest.mark.parametrize(
    ("received_at", "day"),
    [
        (at(2026, 3, 2, 14, 59), date(2026, 3, 2)),
        (at(2026, 3, 2, 15, 0), date(2026, 3, 2)),  # "after 15:00" starts after 15:00:00
        (at(2026, 3, 2, 15, 0, 1), date(2026, 3, 3)),
        (at(2026, 3, 2, 15, 1), date(2026, 3, 3)),
        (at(2026, 3, 6, 15, 30), date(2026, 3, 9)),  # Friday after 15:00 → Monday
        (at(2026, 3, 7, 9, 0), date(2026, 3, 9)),  # Saturday morning → Monday
        (at(2026, 3, 8, 9, 0), date(2026, 3, 9)),  # Sunday
        (at(2026, 2, 13, 15, 1), date(2026, 2, 23)),  # Friday before Tết 2026, late
        (at(2026, 2, 17, 9, 0), date(2026, 2, 23)),  # on the first day of Tết
        (at(2027, 2, 3, 16, 0), date(2027, 2, 11)),  # the day before Tết 2027, late
        (at(2026, 3, 2, 0, 0), date(2026, 3, 2)),
    ],
)
def test_received_day(received_at: datetime, day: date) -> None:
    assert CAL.received_day(received_at) == day
    assert deadlines.received_day(received_at) == day


def test_received_day_uses_local_time() -> None:
    # 08:30 UTC is 15:30 in Hanoi; 16:59 UTC on Sunday is 23:59 Sunday there.
    assert CAL.received_day(datetime(2026, 3, 2, 8, 30, tzinfo=UTC)) == date(2026, 3, 3)
    assert CAL.received_day(datetime(2026, 3, 2, 7, 59, tzinfo=UTC)) == date(2026, 3, 2)
    assert CAL.received_day(datetime(2026, 3, 1, 17, 0, tzinfo=UTC)) == date(2026, 3, 2)
    assert CAL.local_date(datetime(2026, 3, 1, 17, 0, tzinfo=UTC)) == date(2026, 3, 2)


def test_naive_moments_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CAL.received_day(datetime(2026, 3, 2, 10, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        CAL.local_date(datetime(2026, 3, 2, 10, 0))


# --- Due dates -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("received_at", "days", "due"),
    [
        # Same-day procedures.
        (at(2026, 3, 2, 14, 59), 0, date(2026, 3, 2)),
        (at(2026, 3, 2, 15, 1), 0, date(2026, 3, 3)),
        (at(2026, 3, 6, 15, 1), 0, date(2026, 3, 9)),
        (at(2026, 3, 7, 8, 0), 0, date(2026, 3, 9)),
        # The received day is not counted.
        (at(2026, 3, 2), 1, date(2026, 3, 3)),
        (at(2026, 3, 2), 3, date(2026, 3, 5)),
        (at(2026, 3, 2, 16, 0), 3, date(2026, 3, 6)),  # received Tuesday, then Wed Thu Fri
        (at(2026, 3, 5), 3, date(2026, 3, 10)),  # over a weekend
        (at(2026, 3, 7, 9, 0), 2, date(2026, 3, 11)),  # Saturday morning: received Monday
        (at(2026, 3, 2), 5, date(2026, 3, 9)),
        # Tết 2026 (16–20 February).
        (at(2026, 2, 12), 1, date(2026, 2, 13)),
        (at(2026, 2, 12), 2, date(2026, 2, 23)),
        (at(2026, 2, 13), 3, date(2026, 2, 25)),
        (at(2026, 2, 13, 16, 0), 0, date(2026, 2, 23)),
        (at(2026, 2, 11), 7, date(2026, 2, 27)),
        # Tết 2027 (4–10 February).
        (at(2027, 2, 3), 1, date(2027, 2, 11)),
        (at(2027, 2, 3, 15, 1), 0, date(2027, 2, 11)),
        (at(2027, 2, 2), 3, date(2027, 2, 12)),
        # Giỗ Tổ (Monday 27/4/2026), 30/4 and 1/5.
        (at(2026, 4, 24), 2, date(2026, 4, 29)),
        (at(2026, 4, 29), 1, date(2026, 5, 4)),
        (at(2026, 4, 29), 3, date(2026, 5, 6)),
        (at(2027, 4, 29), 1, date(2027, 5, 4)),  # 30/4 Friday, 1/5 Saturday → Monday 3/5 off
        # 2/9 and the adjacent day.
        (at(2026, 8, 31), 1, date(2026, 9, 3)),
        (at(2027, 9, 1), 1, date(2027, 9, 6)),
        # A make-up Saturday counts (4/5/2024).
        (at(2024, 5, 3), 1, date(2024, 5, 4)),
    ],
)
def test_due_date(received_at: datetime, days: int, due: date) -> None:
    assert CAL.due_date(received_at, days) == due
    assert deadlines.due_date(received_at, days) == due


def test_negative_processing_days_are_refused() -> None:
    with pytest.raises(ValueError, match="0 or more"):
        CAL.due_date(at(2026, 3, 2), -1)


def test_add_working_days_backwards_and_zero() -> None:
    assert CAL.add_working_days(date(2026, 2, 23), -1) == date(2026, 2, 13)
    assert CAL.add_working_days(date(2026, 3, 9), -1) == date(2026, 3, 6)
    assert CAL.add_working_days(date(2026, 3, 7), 0) == date(2026, 3, 7)
    assert deadlines.add_working_days(date(2026, 3, 6), 1) == date(2026, 3, 9)
    assert CAL.next_working_day(date(2026, 2, 13)) == date(2026, 2, 23)


def test_count_working_days() -> None:
    assert CAL.count_working_days(date(2026, 2, 13), date(2026, 2, 23)) == 2
    assert CAL.count_working_days(date(2026, 3, 2), date(2026, 3, 8)) == 5
    assert CAL.count_working_days(date(2026, 3, 8), date(2026, 3, 2)) == 0


# --- Pauses while waiting for the citizen --------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "days"),
    [
        (at(2026, 3, 3, 10), at(2026, 3, 3, 11), 1),  # a partial day counts as one
        (at(2026, 3, 6, 16), at(2026, 3, 9, 9), 2),  # Friday and Monday, not the weekend
        (at(2026, 3, 3, 10), at(2026, 3, 5, 0, 0), 2),  # ends at midnight: Thursday untouched
        (at(2026, 3, 3, 10), at(2026, 3, 3, 10), 0),
        (at(2026, 3, 7, 8), at(2026, 3, 8, 20), 0),  # a weekend only
        (at(2026, 2, 13, 9), at(2026, 2, 23, 9), 2),  # across Tết 2026
        (datetime(2026, 3, 3, 17, 30, tzinfo=UTC), datetime(2026, 3, 3, 18, tzinfo=UTC), 1),
    ],
)
def test_working_days_between(start: datetime, end: datetime, days: int) -> None:
    assert CAL.working_days_between(start, end) == days


def test_pause_must_not_end_before_it_starts() -> None:
    with pytest.raises(ValueError, match="ends .* before it starts"):
        CAL.working_days_between(at(2026, 3, 3, 11), at(2026, 3, 3, 10))


def test_due_date_moves_by_the_paused_working_days() -> None:
    received = at(2026, 3, 2)  # Monday, 3 days → Thursday 5 March
    assert CAL.due_date(received, 3) == date(2026, 3, 5)
    one_hour = [(at(2026, 3, 3, 10), at(2026, 3, 3, 11))]
    assert CAL.due_date(received, 3, paused=one_hour) == date(2026, 3, 6)
    over_weekend = [(at(2026, 3, 4, 16), at(2026, 3, 9, 9))]  # Wed, Thu, Fri, Mon
    assert CAL.due_date(received, 3, paused=over_weekend) == date(2026, 3, 11)
    # Overlapping pauses count each day once; two separate pauses add up.
    overlapping = [(at(2026, 3, 3, 8), at(2026, 3, 3, 12)), (at(2026, 3, 3, 11), at(2026, 3, 4, 9))]
    assert CAL.paused_working_days(overlapping) == 2
    separate = [(at(2026, 3, 3, 8), at(2026, 3, 3, 9)), (at(2026, 3, 10, 8), at(2026, 3, 10, 9))]
    assert CAL.due_date(received, 3, paused=separate) == date(2026, 3, 9)
    # A pause reaching into Tết 2026 extends past it.
    tet = [(at(2026, 2, 12, 9), at(2026, 2, 23, 9))]  # Thu 12, Fri 13, Mon 23
    assert CAL.due_date(at(2026, 2, 11), 1, paused=tet) == date(2026, 2, 24)


# --- Deadline status and the apology -------------------------------------------------------------


@pytest.mark.parametrize(
    ("due", "now", "closed", "status"),
    [
        (date(2026, 3, 11), at(2026, 3, 9, 10), False, DeadlineStatus.ON_TIME),
        (date(2026, 3, 11), at(2026, 3, 10, 10), False, DeadlineStatus.DUE_SOON),
        (date(2026, 3, 11), at(2026, 3, 11, 0, 0), False, DeadlineStatus.DUE_TODAY),
        (date(2026, 3, 11), at(2026, 3, 11, 23, 59, 59), False, DeadlineStatus.DUE_TODAY),
        (date(2026, 3, 11), at(2026, 3, 12, 0, 0), False, DeadlineStatus.OVERDUE),
        (date(2026, 3, 9), at(2026, 3, 5), False, DeadlineStatus.ON_TIME),
        (date(2026, 3, 9), at(2026, 3, 6), False, DeadlineStatus.DUE_SOON),  # Friday, due Monday
        (date(2026, 3, 9), at(2026, 3, 7), False, DeadlineStatus.DUE_SOON),  # the weekend between
        (date(2026, 2, 23), at(2026, 2, 13), False, DeadlineStatus.DUE_SOON),  # Tết between
        (date(2026, 2, 23), at(2026, 2, 12), False, DeadlineStatus.ON_TIME),
        # Closed: `now` is when it was settled.
        (date(2026, 3, 11), at(2026, 3, 11, 23), True, DeadlineStatus.ON_TIME),
        (date(2026, 3, 11), at(2026, 3, 9), True, DeadlineStatus.ON_TIME),
        (date(2026, 3, 11), at(2026, 3, 12, 8), True, DeadlineStatus.OVERDUE),
        # 2026-03-11 17:00 UTC is already 12 March in Hanoi.
        (date(2026, 3, 11), datetime(2026, 3, 11, 17, 0, tzinfo=UTC), False, "overdue"),
    ],
)
def test_deadline_status(due: date, now: datetime, closed: bool, status: str) -> None:
    assert CAL.deadline_status(due, now, closed) == status
    assert deadlines.deadline_status(due, now, closed) == status


@pytest.mark.parametrize(
    ("due", "now", "needed"),
    [
        (date(2026, 3, 9), at(2026, 3, 5, 23, 59), False),
        (date(2026, 3, 9), at(2026, 3, 6, 0, 0), True),  # Friday is the last day to apologise
        (date(2026, 3, 9), at(2026, 3, 8), True),
        (date(2026, 3, 9), at(2026, 3, 9), True),
        (date(2026, 3, 9), at(2026, 3, 20), True),  # late and still no apology
        (date(2026, 2, 23), at(2026, 2, 12, 17), False),
        (date(2026, 2, 23), at(2026, 2, 13, 8), True),  # across Tết: Friday 13 February
        (date(2027, 2, 11), at(2027, 2, 3, 8), True),
        (date(2027, 2, 11), at(2027, 2, 2, 8), False),
    ],
)
def test_apology_needed(due: date, now: datetime, needed: bool) -> None:
    assert CAL.apology_needed(due, now) is needed
    assert deadlines.apology_needed(due, now) is needed


def test_apology_day() -> None:
    assert CAL.apology_day(date(2026, 2, 23)) == date(2026, 2, 13)
    assert CAL.apology_day(date(2026, 3, 11)) == date(2026, 3, 10)


# --- Properties ----------------------------------------------------------------------------------

moments = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(VN)
)
days = st.dates(min_value=date(2024, 1, 1), max_value=date(2028, 12, 31))


@st.composite
def pauses(draw: st.DrawFn) -> list[tuple[datetime, datetime]]:
    result = []
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        start = draw(moments)
        length = draw(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=20)))
        result.append((start, start + length))
    return result


@settings(max_examples=200)
@given(received=moments, n=st.integers(min_value=0, max_value=30), paused=pauses())
def test_due_date_is_a_working_day_not_before_the_received_day(
    received: datetime, n: int, paused: list[tuple[datetime, datetime]]
) -> None:
    due = CAL.due_date(received, n, paused=paused)
    start = CAL.received_day(received)
    assert CAL.is_working_day(due)
    assert CAL.is_working_day(start)
    assert start >= received.date()
    assert due >= start
    # Exactly n working days after the received day, plus the paused ones.
    assert CAL.count_working_days(start + timedelta(days=1), due) == n + CAL.paused_working_days(
        paused
    )
    assert due >= CAL.due_date(received, n)


@settings(max_examples=200)
@given(
    a=days,
    b=days,
    n=st.integers(min_value=-40, max_value=40),
    m=st.integers(min_value=-40, max_value=40),
)
def test_add_working_days_is_monotonic(a: date, b: date, n: int, m: int) -> None:
    first, second = min(a, b), max(a, b)
    low, high = min(n, m), max(n, m)
    assert CAL.add_working_days(first, n) <= CAL.add_working_days(second, n)
    assert CAL.add_working_days(first, low) <= CAL.add_working_days(first, high)
    if n != 0:
        assert CAL.is_working_day(CAL.add_working_days(first, n))


@given(received=moments)
def test_later_receipt_never_gives_an_earlier_due_date(received: datetime) -> None:
    later = received + timedelta(minutes=1)
    assert CAL.received_day(received) <= CAL.received_day(later)
    assert CAL.due_date(received, 3) <= CAL.due_date(later, 3)


def test_cutoff_is_15_00_local() -> None:
    assert deadlines.CUTOFF == time(15, 0)
    assert CAL.tz == VN
