"""Working days and due dates (ngày làm việc, thời hạn giải quyết) of a commune office.

A dossier's return date (ngày hẹn trả kết quả) is counted in working days (domain.md §6):

- Saturday and Sunday are not working days. Offices receive papers on Saturday morning, but a
  Saturday does not count (a Saturday the government declares a make-up working day, ngày làm bù,
  does: it is a full working day for every office).
- Public holidays (Bộ luật Lao động 2019 Điều 112) are not working days: 1/1, Tết Nguyên đán
  (5 days, lunar calendar), Giỗ Tổ Hùng Vương (10/3 lunar), 30/4, 1/5, 2/9 and one adjacent day,
  plus the compensatory day off when one falls on a weekend. The `holidays` package (country
  "VN") computes these, lunar dates included, and the swaps the government decided up to its
  release (its table of swaps, `VietnamStaticHolidays`, ends with 2024 in version 0.84).
- Every year the government also moves days (nghỉ bù / làm bù) by an official dispatch. The
  package has none for 2025–2027, so none are built in here: an install lists them in its
  configuration (`EXTRA_DAYS_OFF`, `EXTRA_WORKING_DAYS`, ISO dates) when they are announced.
- A dossier received after 15:00 (sau 15 giờ, Luật Hộ tịch Điều 5) or on a day that is not a
  working day counts as received on the next working day. 15:00:00 exactly is not "after 15:00".
- The day of receipt is not counted; a term of n days ends at 24:00 of the n-th working day after
  it (Bộ luật Dân sự 2015 Điều 147–148). A same-day procedure (0 days) is due on the day of receipt.
- Time spent waiting for the citizen's supplement does not count against the office: the due date
  moves by the number of working days the clock was paused (see `working_days_between`).
- No later than one working day before the due date, an office that will be late sends the citizen
  an apology with a new date (NĐ 61/2018), once; `apology_needed` says when that window opens.

All functions take the moment (`now`, `received_at`) as a timezone-aware parameter; days are
counted in the commune's local time, Asia/Ho_Chi_Minh (UTC+7, no daylight saving time).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
CUTOFF = time(15, 0)  # a dossier received later than this counts from the next working day
# A run of days off this long means the configuration is wrong (every day off), not a long Tết.
_MAX_DAYS_OFF_IN_A_ROW = 366


class DeadlineStatus(StrEnum):
    """Where a dossier stands against its due date, for the officials' queue and dashboards."""

    ON_TIME = "on_time"
    DUE_SOON = "due_soon"  # the due date is the next working day
    DUE_TODAY = "due_today"
    OVERDUE = "overdue"


@dataclass(frozen=True, slots=True)
class _Year:
    days_off: Mapping[date, str]  # public holidays and compensatory days, with their names
    weekend_working_days: frozenset[date]  # make-up Saturdays/Sundays decided by the government


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment!r}")
    return moment


def _parse_days(value: object, key: str) -> list[date]:
    """A configuration list of days: ISO strings or dates, or one string separated by commas."""
    if value is None:
        return []
    items: Iterable[object]
    if isinstance(value, str):
        items = [part for part in value.replace(",", " ").split() if part]
    elif isinstance(value, date | list | tuple | set | frozenset):
        items = [value] if isinstance(value, date) else value
    else:
        raise ValueError(f"{key} must be a list of dates (YYYY-MM-DD), got {value!r}")
    days = []
    for item in items:
        if isinstance(item, datetime):
            raise ValueError(f"{key}: {item!r} is a moment, not a day")
        if isinstance(item, date):
            days.append(item)
            continue
        try:
            days.append(date.fromisoformat(str(item)))
        except ValueError:
            raise ValueError(f"{key}: {item!r} is not a date written YYYY-MM-DD") from None
    return days


class WorkCalendar:
    """The working days of an install: Vietnamese public holidays plus its own adjustments.

    `extra_days_off` and `extra_working_days` are the government's yearly swaps (or a local
    closure) that the `holidays` package does not know; they win over the package and weekends.
    The calendar is safe to share between threads: each year is computed once, under a lock.
    """

    def __init__(
        self,
        *,
        extra_days_off: Iterable[date] = (),
        extra_working_days: Iterable[date] = (),
        tz: ZoneInfo = LOCAL_TZ,
        cutoff: time = CUTOFF,
    ) -> None:
        self.extra_days_off = frozenset(extra_days_off)
        self.extra_working_days = frozenset(extra_working_days)
        both = self.extra_days_off & self.extra_working_days
        if both:
            listed = ", ".join(d.isoformat() for d in sorted(both))
            raise ValueError(f"days listed both as days off and as working days: {listed}")
        self.tz = tz
        self.cutoff = cutoff
        self._years: dict[int, _Year] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> WorkCalendar:
        """Build from configuration: `EXTRA_DAYS_OFF` and `EXTRA_WORKING_DAYS`, lists of ISO dates
        (or one comma-separated string, as an environment variable gives)."""
        return cls(
            extra_days_off=_parse_days(settings.get("EXTRA_DAYS_OFF"), "EXTRA_DAYS_OFF"),
            extra_working_days=_parse_days(
                settings.get("EXTRA_WORKING_DAYS"), "EXTRA_WORKING_DAYS"
            ),
        )

    # --- days -----------------------------------------------------------------------------------

    def _year(self, year: int) -> _Year:
        cached = self._years.get(year)
        if cached is not None:
            return cached
        with self._lock:
            cached = self._years.get(year)
            if cached is not None:
                return cached
            # A swap can cross a year boundary (2015's 2 January off was made up on Saturday
            # 27 December 2014), so the neighbouring years are computed too and filtered.
            vn = holidays.country_holidays("VN", years=(year - 1, year, year + 1), language="vi")
            computed = _Year(
                days_off={d: name for d, name in vn.items() if d.year == year},
                weekend_working_days=frozenset(d for d in vn.weekend_workdays if d.year == year),
            )
            self._years[year] = computed
            return computed

    def holiday_name(self, day: date) -> str | None:
        """The Vietnamese name of the public holiday on `day`, if any ("Tết Nguyên Đán")."""
        if day in self.extra_days_off:
            return self._year(day.year).days_off.get(day, "Ngày nghỉ theo thông báo")
        return self._year(day.year).days_off.get(day)

    def is_working_day(self, day: date) -> bool:
        if day in self.extra_working_days:
            return True
        if day in self.extra_days_off:
            return False
        year = self._year(day.year)
        if day.weekday() >= 5:  # Saturday, Sunday
            return day in year.weekend_working_days
        return day not in year.days_off

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after `day`."""
        return self.add_working_days(day, 1)

    def add_working_days(self, start: date, n: int) -> date:
        """The n-th working day after `start` (before it when n < 0); `start` itself is not
        counted, and n = 0 gives `start` unchanged."""
        step = timedelta(days=1 if n >= 0 else -1)
        day, left, idle = start, abs(n), 0
        while left:
            day += step
            if self.is_working_day(day):
                left, idle = left - 1, 0
            else:
                idle += 1
                if idle > _MAX_DAYS_OFF_IN_A_ROW:
                    raise ValueError(f"no working day within a year of {day.isoformat()}")
        return day

    def count_working_days(self, first: date, last: date) -> int:
        """Working days from `first` to `last`, both included (0 when last < first)."""
        count, day = 0, first
        while day <= last:
            count += self.is_working_day(day)
            day += timedelta(days=1)
        return count

    # --- moments --------------------------------------------------------------------------------

    def local_date(self, now: datetime) -> date:
        """The calendar day at the commune for an aware moment."""
        return _aware(now, "now").astimezone(self.tz).date()

    def received_day(self, received_at: datetime) -> date:
        """The working day a dossier counts as received: the day itself if it is a working day
        and the dossier came in by 15:00, else the next working day."""
        local = _aware(received_at, "received_at").astimezone(self.tz)
        day = local.date()
        if self.is_working_day(day) and local.time() <= self.cutoff:
            return day
        return self.next_working_day(day)

    def working_days_between(self, start: datetime, end: datetime) -> int:
        """Working days touched by the interval [start, end) in local time, a partial day
        counting as a whole one: the length of one pause of the clock.

        A pause from Tuesday 10:00 to Tuesday 11:00 is 1 day; from Friday 16:00 to Monday 09:00
        it is 2 (Friday and Monday, the weekend is not a working day); an interval that ends at
        midnight does not touch the day that starts then; an empty interval is 0.
        """
        return len(self._days_touched(start, end))

    def _days_touched(self, start: datetime, end: datetime) -> set[date]:
        first = _aware(start, "start").astimezone(self.tz)
        last = _aware(end, "end").astimezone(self.tz)
        if last < first:
            raise ValueError(f"interval ends ({end.isoformat()}) before it starts")
        if last == first:
            return set()
        final_day = last.date() if last.time() != time(0) else last.date() - timedelta(days=1)
        days, day = set(), first.date()
        while day <= final_day:
            if self.is_working_day(day):
                days.add(day)
            day += timedelta(days=1)
        return days

    def paused_working_days(self, paused: Iterable[tuple[datetime, datetime]]) -> int:
        """Working days touched by any of the pauses; a day touched twice counts once."""
        days: set[date] = set()
        for start, end in paused:
            days |= self._days_touched(start, end)
        return len(days)

    def due_date(
        self,
        received_at: datetime,
        processing_days: int,
        *,
        paused: Sequence[tuple[datetime, datetime]] = (),
    ) -> date:
        """The return date: the last day (until 24:00) the office has to settle the dossier.

        `processing_days` 0 is a same-day procedure: due on the received day (the next working
        day when filed after 15:00 or on a day off). Otherwise the received day is not counted
        and the dossier is due on the n-th working day after it. `paused` are the intervals spent
        waiting for the citizen's supplement; the due date moves by the working days they touch
        (`working_days_between`), so it is always a working day.
        """
        if isinstance(processing_days, bool) or processing_days < 0:
            raise ValueError(f"processing_days must be 0 or more, got {processing_days!r}")
        base = self.add_working_days(self.received_day(received_at), processing_days)
        return self.add_working_days(base, self.paused_working_days(paused))

    # --- where a dossier stands -------------------------------------------------------------------

    def deadline_status(self, due: date, now: datetime, closed: bool) -> DeadlineStatus:
        """How a dossier stands against `due`. For a closed dossier pass the moment it was
        settled as `now`: it was on time if that was no later than the due date."""
        today = self.local_date(now)
        if closed:
            return DeadlineStatus.ON_TIME if today <= due else DeadlineStatus.OVERDUE
        if today > due:
            return DeadlineStatus.OVERDUE
        if today == due:
            return DeadlineStatus.DUE_TODAY
        if due <= self.add_working_days(today, 1):
            return DeadlineStatus.DUE_SOON
        return DeadlineStatus.ON_TIME

    def apology_day(self, due: date) -> date:
        """The last day to send the apology letter: the working day before the due date."""
        return self.add_working_days(due, -1)

    def apology_needed(self, due: date, now: datetime) -> bool:
        """True once the apology window is open: from the working day before `due` on (and
        after it). Whether one was already sent is the caller's to know."""
        return self.local_date(now) >= self.apology_day(due)


@cache
def default_calendar() -> WorkCalendar:
    """The calendar with public holidays only, for callers without an install's configuration."""
    return WorkCalendar()


def is_working_day(day: date, *, calendar: WorkCalendar | None = None) -> bool:
    return (calendar or default_calendar()).is_working_day(day)


def add_working_days(start: date, n: int, *, calendar: WorkCalendar | None = None) -> date:
    return (calendar or default_calendar()).add_working_days(start, n)


def received_day(received_at: datetime, *, calendar: WorkCalendar | None = None) -> date:
    return (calendar or default_calendar()).received_day(received_at)


def due_date(
    received_at: datetime,
    processing_days: int,
    *,
    paused: Sequence[tuple[datetime, datetime]] = (),
    calendar: WorkCalendar | None = None,
) -> date:
    return (calendar or default_calendar()).due_date(received_at, processing_days, paused=paused)


def deadline_status(
    due: date, now: datetime, closed: bool, *, calendar: WorkCalendar | None = None
) -> DeadlineStatus:
    return (calendar or default_calendar()).deadline_status(due, now, closed)


def apology_needed(due: date, now: datetime, *, calendar: WorkCalendar | None = None) -> bool:
    return (calendar or default_calendar()).apology_needed(due, now)
