"""How posters are used (thống kê áp phích): the daily funnel, and posters that fell silent.

Every genuine scan of a poster, every form started from it, every dossier submitted from it and
every one of those approved adds one to that poster's row for the day (`PosterDay`): counts only,
never an IP address, a device or a person. This module turns those rows into what a commune
admin reads:

- the **funnel** (phễu) of a poster over a period: scans → forms started → dossiers submitted →
  dossiers approved, with the share kept at each step;
- **silent posters** (áp phích "im lặng"): a poster that was scanned every day and suddenly is
  not, while the posters around it still are. Paper on a wall gets covered by an advertisement,
  torn off, soaked, or pasted over with a fake QR sticker (domain.md §8); the commune learns it
  from the numbers instead of from a citizen who was cheated.

The silence rule, with every threshold a field of `SilenceRule` (defaults in brackets). Days are
the commune's local calendar days; `today` is excluded from the windows because it has only begun.

    quiet window     Q = the `quiet_days` [7] days before today
    baseline window  B = the `baseline_days` [28] days before Q

A poster P is flagged when all of these hold:

1. P is in use today and was in use on every day of Q, and on at least `min_history_days` [14]
   days of B (a poster put up last week has no habit to break yet);
2. P has no scan in Q and none so far today;
3. before that, P was scanned at least `min_daily_scans` [1.0] times a day on average over its
   days in use in B;
4. P's neighbours still get scanned. The neighbours are the commune's other posters in use on a
   day of Q that hang at the same place (the place label compared without case, accents kept, and
   extra spaces) or offer the same procedure. Together they were scanned at least
   `min_neighbour_scans` [3] times in Q, and their rate per poster-day in Q is at least
   `neighbour_keep_ratio` [0.5] of their rate in B.

Why these conditions. If scans arrive at random at k a day, a poster that still hangs shows no
scan in N days with chance e^(-kN): with k ≥ 1 and N = 7 that is under 0.1 % (`false_alarm_chance`),
so posters too quiet to tell a bad week from a torn poster are never flagged. Condition 4 keeps a
commune-wide lull (Tết, a flood, the site down) from flagging every poster at once: then the
neighbours go quiet too. A poster without neighbours is never flagged, for the same reason.
"""

from __future__ import annotations

import math
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from core.text import Message

# --- the funnel -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Funnel:
    """Counts of one poster over a day or a period, step by step."""

    scans: int = 0
    forms_started: int = 0
    submitted: int = 0
    approved: int = 0

    def __post_init__(self) -> None:
        if min(self.scans, self.forms_started, self.submitted, self.approved) < 0:
            raise ValueError(f"Funnel counts cannot be negative: {self}")

    def __add__(self, other: Funnel) -> Funnel:
        return Funnel(
            self.scans + other.scans,
            self.forms_started + other.forms_started,
            self.submitted + other.submitted,
            self.approved + other.approved,
        )

    @property
    def started_share(self) -> float | None:
        """Forms started per scan (None when there was no scan)."""
        return _share(self.forms_started, self.scans)

    @property
    def submitted_share(self) -> float | None:
        """Dossiers submitted per form started."""
        return _share(self.submitted, self.forms_started)

    @property
    def approved_share(self) -> float | None:
        """Dossiers approved per dossier submitted."""
        return _share(self.approved, self.submitted)


def _share(part: int, whole: int) -> float | None:
    # A step may exceed the one before it within a period (a form started on the 31st and
    # submitted on the 1st); the share is reported as counted, not clipped, so nothing is hidden.
    return part / whole if whole else None


@dataclass(frozen=True, slots=True)
class DayCount:
    """One stored row: a poster's funnel on one local day."""

    poster_id: int
    day: date
    funnel: Funnel


def totals(
    counts: Iterable[DayCount], *, first: date | None = None, last: date | None = None
) -> dict[int, Funnel]:
    """Each poster's funnel summed over the days `first`..`last` (inclusive; None = open)."""
    out: dict[int, Funnel] = {}
    for row in counts:
        if (first is None or row.day >= first) and (last is None or row.day <= last):
            out[row.poster_id] = out.get(row.poster_id, Funnel()) + row.funnel
    return out


def daily(
    counts: Iterable[DayCount], poster_id: int, *, first: date, last: date
) -> list[tuple[date, Funnel]]:
    """One poster's funnel for every day `first`..`last`, newest first, quiet days as zeros."""
    if last < first:
        raise ValueError(f"The period ends ({last}) before it starts ({first})")
    by_day: dict[date, Funnel] = defaultdict(Funnel)
    for row in counts:
        if row.poster_id == poster_id and first <= row.day <= last:
            by_day[row.day] = by_day[row.day] + row.funnel
    span = (last - first).days
    return [(day, by_day[day]) for day in (last - timedelta(days=i) for i in range(span + 1))]


# --- silent posters ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlacedPoster:
    """What the silence rule needs to know of a poster (all days are local calendar days)."""

    id: int
    commune_id: int
    code: str  # the procedure
    location: str  # where it hangs, as staff typed it
    first_day: date  # the day it was created
    last_day: date | None = None  # the last day it could be scanned (revoked or expired), if any

    def in_use_on(self, day: date) -> bool:
        return self.first_day <= day and (self.last_day is None or day <= self.last_day)

    def days_in_use(self, first: date, last: date) -> int:
        start = max(first, self.first_day)
        end = last if self.last_day is None else min(last, self.last_day)
        return max(0, (end - start).days + 1)


@dataclass(frozen=True, slots=True)
class SilenceRule:
    """The thresholds of the silence rule (see the module docstring for what each one does)."""

    quiet_days: int = 7
    baseline_days: int = 28
    min_history_days: int = 14
    min_daily_scans: float = 1.0
    min_neighbour_scans: int = 3
    neighbour_keep_ratio: float = 0.5

    def __post_init__(self) -> None:
        if self.quiet_days < 1 or self.baseline_days < 1:
            raise ValueError("The quiet and baseline windows are at least one day each")
        if not 1 <= self.min_history_days <= self.baseline_days:
            raise ValueError("min_history_days must be between 1 and baseline_days")
        if self.min_daily_scans <= 0:
            raise ValueError("min_daily_scans must be above zero, or every idle poster is flagged")
        if self.min_neighbour_scans < 1:
            raise ValueError("min_neighbour_scans must be at least 1: neighbours must be scanned")
        if self.neighbour_keep_ratio < 0:
            raise ValueError("neighbour_keep_ratio cannot be negative")

    @property
    def false_alarm_chance(self) -> float:
        """The chance that a poster still in place, scanned at random at exactly
        `min_daily_scans` a day, shows no scan for `quiet_days` days by bad luck."""
        return math.exp(-self.min_daily_scans * self.quiet_days)

    def windows(self, today: date) -> tuple[tuple[date, date], tuple[date, date]]:
        """((quiet first, quiet last), (baseline first, baseline last)) for `today`."""
        quiet_last = today - timedelta(days=1)
        quiet_first = today - timedelta(days=self.quiet_days)
        baseline_last = quiet_first - timedelta(days=1)
        baseline_first = quiet_first - timedelta(days=self.baseline_days)
        return (quiet_first, quiet_last), (baseline_first, baseline_last)


@dataclass(frozen=True, slots=True)
class Silence:
    """Why a poster is flagged as silent: the figures the rule looked at."""

    poster_id: int
    quiet_days: int
    baseline_per_day: float  # its average scans a day before it fell silent
    last_scan: date | None  # the last day it was scanned, in the data given
    neighbours: tuple[int, ...] = field(default=())
    neighbour_scans: int = 0  # their scans in the quiet window

    @property
    def message(self) -> Message:
        """What the commune admin reads next to the poster, and what to do about it."""
        vi_rate = f"{self.baseline_per_day:.1f}".replace(".", ",")
        count = len(self.neighbours)
        return Message(
            vi=(
                f"Không có lượt quét nào trong {self.quiet_days} ngày qua (trước đó trung bình "
                f"{vi_rate} lượt/ngày), trong khi {count} áp phích cùng nơi hoặc cùng thủ tục "
                f"vẫn được quét {self.neighbour_scans} lượt. Áp phích có thể đã bị che, rách, "
                "bị gỡ hoặc bị dán mã giả đè lên: hãy đến tận nơi kiểm tra, in lại nếu cần."
            ),
            en=(
                f"No scans in the last {self.quiet_days} days (before that "
                f"{self.baseline_per_day:.1f} a day on average), while {count} poster(s) at the "
                f"same place or for the same procedure were scanned {self.neighbour_scans} "
                "times. It may be covered, torn, taken down or pasted over with a fake code: "
                "go and look, and reprint it if needed."
            ),
        )


def place_key(location: str) -> str:
    """A place label as compared between posters: same letters and accents, any case/spacing."""
    return " ".join(unicodedata.normalize("NFC", location).casefold().split())


def are_neighbours(a: PlacedPoster, b: PlacedPoster) -> bool:
    """Two different posters of one commune at the same place or for the same procedure."""
    return (
        a.id != b.id
        and a.commune_id == b.commune_id
        and (a.code == b.code or place_key(a.location) == place_key(b.location))
    )


def silent_posters(
    posters: Sequence[PlacedPoster],
    counts: Iterable[DayCount],
    *,
    today: date,
    rule: SilenceRule = SilenceRule(),  # noqa: B008 - frozen dataclass, safe as a default
) -> dict[int, Silence]:
    """The posters the silence rule flags on `today`, by poster id, with the figures behind it."""
    (quiet_first, quiet_last), (base_first, base_last) = rule.windows(today)
    scans = _ScanIndex(counts, until=today)
    flagged: dict[int, Silence] = {}
    for poster in posters:
        if not (poster.in_use_on(today) and poster.first_day <= quiet_first):
            continue
        if scans.between(poster.id, quiet_first, today):
            continue
        history = poster.days_in_use(base_first, base_last)
        if history < rule.min_history_days:
            continue
        baseline_rate = scans.between(poster.id, base_first, base_last) / history
        if baseline_rate < rule.min_daily_scans:
            continue
        near = [
            other
            for other in posters
            if are_neighbours(poster, other) and other.days_in_use(quiet_first, quiet_last)
        ]
        quiet_scans = sum(scans.between(n.id, quiet_first, quiet_last) for n in near)
        if quiet_scans < rule.min_neighbour_scans:
            continue
        base_poster_days = sum(n.days_in_use(base_first, base_last) for n in near)
        if base_poster_days:  # else every neighbour is new: no rate of theirs to have dropped
            quiet_rate = quiet_scans / sum(n.days_in_use(quiet_first, quiet_last) for n in near)
            base_rate = sum(scans.between(n.id, base_first, base_last) for n in near)
            if quiet_rate < rule.neighbour_keep_ratio * base_rate / base_poster_days:
                continue
        flagged[poster.id] = Silence(
            poster_id=poster.id,
            quiet_days=rule.quiet_days,
            baseline_per_day=baseline_rate,
            last_scan=scans.last_day(poster.id),
            neighbours=tuple(sorted(n.id for n in near)),
            neighbour_scans=quiet_scans,
        )
    return flagged


class _ScanIndex:
    """Scans per poster and day, up to a day, for the window sums the rule takes."""

    def __init__(self, counts: Iterable[DayCount], *, until: date) -> None:
        self._by_poster: dict[int, dict[date, int]] = defaultdict(dict)
        for row in counts:
            if row.funnel.scans and row.day <= until:
                per_day = self._by_poster[row.poster_id]
                per_day[row.day] = per_day.get(row.day, 0) + row.funnel.scans

    def between(self, poster_id: int, first: date, last: date) -> int:
        days = self._by_poster.get(poster_id, {})
        return sum(n for day, n in days.items() if first <= day <= last)

    def last_day(self, poster_id: int) -> date | None:
        days = self._by_poster.get(poster_id)
        return max(days) if days else None
