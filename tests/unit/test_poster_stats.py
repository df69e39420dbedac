"""The poster funnel and the silent-poster rule (core.poster_stats)."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.poster_stats import (
    DayCount,
    Funnel,
    PlacedPoster,
    SilenceRule,
    are_neighbours,
    daily,
    place_key,
    silent_posters,
    totals,
)

TODAY = date(2025, 11, 20)
RULE = SilenceRule()  # 7 quiet days, 28 baseline days, ≥ 14 days of history, ≥ 1 scan a day
LONG_AGO = TODAY - timedelta(days=90)


def poster(pid: int, code: str = "khai-sinh", location: str = "Bảng tin UBND xã", **kw: object):
    fields: dict[str, object] = {"commune_id": 1, "first_day": LONG_AGO, **kw}
    return PlacedPoster(id=pid, code=code, location=location, **fields)  # type: ignore[arg-type]


def scans(pid: int, per_day: int, first: date, last: date) -> list[DayCount]:
    out, day = [], first
    while day <= last:
        out.append(DayCount(pid, day, Funnel(scans=per_day)))
        day += timedelta(days=1)
    return out


def days_ago(n: int) -> date:
    return TODAY - timedelta(days=n)


# The usual picture: poster 1 was scanned 3 times a day until 8 days ago; poster 2 at the same
# place keeps getting 2 a day, today included.
TORN = scans(1, 3, LONG_AGO, days_ago(8))
NEIGHBOUR = scans(2, 2, LONG_AGO, TODAY)


# --- the funnel -------------------------------------------------------------------------------


def test_funnel_adds_and_gives_each_steps_share() -> None:
    total = Funnel(10, 4, 2, 1) + Funnel(10, 6, 3, 2)
    assert total == Funnel(20, 10, 5, 3)
    assert (total.started_share, total.submitted_share, total.approved_share) == (0.5, 0.5, 0.6)
    assert Funnel().started_share is None and Funnel(scans=3).submitted_share is None
    assert sum([Funnel(1), Funnel(2)], Funnel()) == Funnel(3)
    with pytest.raises(ValueError, match="negative"):
        Funnel(scans=-1)


def test_totals_sum_each_poster_within_the_period() -> None:
    rows = [
        DayCount(1, date(2025, 11, 1), Funnel(5, 2, 1, 0)),
        DayCount(1, date(2025, 11, 2), Funnel(3, 1, 1, 1)),
        DayCount(1, date(2025, 11, 3), Funnel(100, 0, 0, 0)),
        DayCount(2, date(2025, 11, 2), Funnel(7, 0, 0, 0)),
    ]
    assert totals(rows) == {1: Funnel(108, 3, 2, 1), 2: Funnel(7)}
    assert totals(rows, first=date(2025, 11, 2), last=date(2025, 11, 2)) == {
        1: Funnel(3, 1, 1, 1),
        2: Funnel(7),
    }
    assert totals(rows, first=date(2025, 11, 4)) == {}


def test_daily_fills_every_day_newest_first() -> None:
    rows = [
        DayCount(1, date(2025, 11, 2), Funnel(4, 1)),
        DayCount(2, date(2025, 11, 2), Funnel(9)),
        DayCount(1, date(2025, 10, 30), Funnel(1)),  # before the period
    ]
    series = daily(rows, 1, first=date(2025, 11, 1), last=date(2025, 11, 3))
    assert series == [
        (date(2025, 11, 3), Funnel()),
        (date(2025, 11, 2), Funnel(4, 1)),
        (date(2025, 11, 1), Funnel()),
    ]
    with pytest.raises(ValueError, match="before it starts"):
        daily(rows, 1, first=date(2025, 11, 3), last=date(2025, 11, 1))


# --- silent posters ---------------------------------------------------------------------------


def test_a_poster_that_stops_while_its_neighbour_goes_on_is_flagged() -> None:
    flags = silent_posters([poster(1), poster(2)], TORN + NEIGHBOUR, today=TODAY)
    assert set(flags) == {1}
    silence = flags[1]
    assert silence.baseline_per_day == 3.0
    assert silence.last_scan == days_ago(8)
    assert silence.neighbours == (2,)
    assert silence.neighbour_scans == 2 * 7  # the quiet window excludes today
    assert "7 ngày qua" in silence.message.vi and "3,0 lượt/ngày" in silence.message.vi
    assert "kiểm tra" in silence.message.vi and "3.0 a day" in silence.message.en


def test_a_scan_in_the_quiet_window_or_today_clears_the_flag() -> None:
    for day in (days_ago(7), days_ago(3), TODAY):
        rows = [*TORN, *NEIGHBOUR, DayCount(1, day, Funnel(scans=1))]
        assert silent_posters([poster(1), poster(2)], rows, today=TODAY) == {}, day
    # A scan the day before the quiet window does not: the window is exactly 7 days.
    rows = [*scans(1, 3, LONG_AGO, days_ago(9)), DayCount(1, days_ago(8), Funnel(scans=1))]
    assert set(silent_posters([poster(1), poster(2)], rows + NEIGHBOUR, today=TODAY)) == {1}


def test_a_commune_wide_lull_flags_nobody() -> None:
    quiet_neighbour = scans(2, 2, LONG_AGO, days_ago(8))
    assert silent_posters([poster(1), poster(2)], TORN + quiet_neighbour, today=TODAY) == {}


def test_neighbours_must_keep_at_least_half_their_own_rate() -> None:
    before = scans(2, 10, LONG_AGO, days_ago(8))
    assert (
        silent_posters(
            [poster(1), poster(2)], TORN + before + scans(2, 4, days_ago(7), TODAY), today=TODAY
        )
        == {}
    )  # 4/day against 10/day: the whole place went quiet, not this poster
    flagged = silent_posters(
        [poster(1), poster(2)], TORN + before + scans(2, 5, days_ago(7), TODAY), today=TODAY
    )
    assert set(flagged) == {1}  # 5/day is exactly half
    lenient = SilenceRule(neighbour_keep_ratio=0.3)
    rows = TORN + before + scans(2, 4, days_ago(7), TODAY)
    assert set(silent_posters([poster(1), poster(2)], rows, today=TODAY, rule=lenient)) == {1}


def test_neighbours_need_enough_scans_in_the_quiet_window() -> None:
    sparse = [DayCount(2, days_ago(2), Funnel(scans=2))]
    assert silent_posters([poster(1), poster(2)], TORN + sparse, today=TODAY) == {}
    enough = [*sparse, DayCount(2, days_ago(5), Funnel(scans=1))]
    assert set(silent_posters([poster(1), poster(2)], TORN + enough, today=TODAY)) == {1}
    strict = SilenceRule(min_neighbour_scans=4)
    assert silent_posters([poster(1), poster(2)], TORN + enough, today=TODAY, rule=strict) == {}


def test_too_quiet_a_poster_is_never_flagged() -> None:
    # 1 scan a day on average is the threshold: 27 scans over 28 days is below it.
    base_first, base_last = RULE.windows(TODAY)[1]
    at_threshold = scans(1, 1, base_first, base_last)
    below = at_threshold[1:]
    assert set(silent_posters([poster(1), poster(2)], at_threshold + NEIGHBOUR, today=TODAY)) == {1}
    assert silent_posters([poster(1), poster(2)], below + NEIGHBOUR, today=TODAY) == {}
    assert RULE.false_alarm_chance < 0.001


def test_a_poster_needs_enough_history_before_it_can_fall_silent() -> None:
    base_last = RULE.windows(TODAY)[1][1]
    first_day = base_last - timedelta(days=13)  # 14 days in the baseline window
    young = poster(1, first_day=first_day)
    rows = scans(1, 3, first_day, base_last) + NEIGHBOUR
    assert set(silent_posters([young, poster(2)], rows, today=TODAY)) == {1}
    younger = poster(1, first_day=first_day + timedelta(days=1))
    assert silent_posters([younger, poster(2)], rows, today=TODAY) == {}
    # The baseline rate counts only the days the poster was up.
    assert silent_posters([young, poster(2)], rows, today=TODAY)[1].baseline_per_day == 3.0


def test_revoked_or_expired_posters_are_not_silent_but_still_count_as_neighbours() -> None:
    revoked = poster(1, last_day=days_ago(1))
    assert silent_posters([revoked, poster(2)], TORN + NEIGHBOUR, today=TODAY) == {}
    gone_neighbour = poster(2, last_day=days_ago(2))
    rows = TORN + scans(2, 2, LONG_AGO, days_ago(2))
    assert set(silent_posters([poster(1), gone_neighbour], rows, today=TODAY)) == {1}
    long_gone = poster(2, last_day=days_ago(8))
    assert silent_posters([poster(1), long_gone], TORN + NEIGHBOUR, today=TODAY) == {}


def test_who_counts_as_a_neighbour() -> None:
    a = poster(1, "khai-sinh", "Bảng tin UBND xã")
    assert are_neighbours(a, poster(2, "ket-hon", "  bảng tin   ubnd XÃ "))
    assert are_neighbours(a, poster(2, "khai-sinh", "Công viên ấp 3"))
    assert not are_neighbours(a, poster(2, "ket-hon", "Công viên ấp 3"))
    assert not are_neighbours(a, poster(2, "khai-sinh", "Bảng tin UBND xã", commune_id=2))
    assert not are_neighbours(a, a)
    assert place_key("Bảng tin UBND xã") != place_key("Bang tin UBND xa")  # accents matter
    lonely = [poster(1), poster(2, "ket-hon", "Công viên ấp 3", commune_id=2)]
    assert silent_posters(lonely, TORN + NEIGHBOUR, today=TODAY) == {}
    by_procedure = [poster(1), poster(2, "khai-sinh", "Công viên ấp 3")]
    assert set(silent_posters(by_procedure, TORN + NEIGHBOUR, today=TODAY)) == {1}


def test_rule_thresholds_are_checked() -> None:
    for bad in (
        {"quiet_days": 0},
        {"baseline_days": 0},
        {"min_history_days": 29},
        {"min_history_days": 0},
        {"min_daily_scans": 0},
        {"min_neighbour_scans": 0},
        {"neighbour_keep_ratio": -0.1},
    ):
        with pytest.raises(ValueError):
            SilenceRule(**bad)  # type: ignore[arg-type]
    quiet, baseline = SilenceRule(quiet_days=3, baseline_days=10, min_history_days=5).windows(TODAY)
    assert quiet == (days_ago(3), days_ago(1))
    assert baseline == (days_ago(13), days_ago(4))


# --- properties -------------------------------------------------------------------------------

PLACES = ("Bảng tin UBND xã", "Công viên ấp 3", "Chợ Nhuận Đức")
CODES = ("khai-sinh", "ket-hon")


@st.composite
def commune_histories(draw: st.DrawFn) -> tuple[list[PlacedPoster], list[DayCount]]:
    n = draw(st.integers(min_value=1, max_value=5))
    posters = [
        poster(
            pid,
            draw(st.sampled_from(CODES)),
            draw(st.sampled_from(PLACES)),
            first_day=days_ago(draw(st.integers(min_value=0, max_value=45))),
        )
        for pid in range(1, n + 1)
    ]
    rows = []
    for p in posters:
        stop = draw(st.integers(min_value=0, max_value=45))  # scans stop `stop` days ago
        rate = draw(st.integers(min_value=0, max_value=4))
        if rate and p.first_day <= days_ago(stop):
            rows += scans(p.id, rate, p.first_day, days_ago(stop))
    return posters, rows


@settings(max_examples=150, deadline=None)
@given(commune_histories(), st.integers(min_value=1, max_value=3))
def test_flags_follow_the_rule(history: tuple[list[PlacedPoster], list[DayCount]], k: int) -> None:
    posters, rows = history
    flags = silent_posters(posters, rows, today=TODAY)
    (quiet_first, _), _ = RULE.windows(TODAY)
    for pid, silence in flags.items():
        assert totals(rows, first=quiet_first, last=TODAY).get(pid, Funnel()).scans == 0
        assert silence.baseline_per_day >= RULE.min_daily_scans
        assert silence.neighbours and silence.neighbour_scans >= RULE.min_neighbour_scans
        # One scan in the quiet window unflags it.
        assert pid not in silent_posters(
            posters, [*rows, DayCount(pid, days_ago(1), Funnel(scans=1))], today=TODAY
        )
    # A stricter threshold never adds a flag.
    stricter = dataclasses.replace(RULE, min_daily_scans=RULE.min_daily_scans + k)
    assert set(silent_posters(posters, rows, today=TODAY, rule=stricter)) <= set(flags)
