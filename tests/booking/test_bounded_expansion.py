"""Bounded expansion: a series stops at its reach (SERIES_BUDGET instances by
its rule's arithmetic) and one expansion returns at most MAX_OCCURRENCES, so
no rule can make the server iterate without end; the booking agendas refuse
sub-daily repeats and dates out of range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import icalendar
import pytest

from booking import events, limits
from booking.recurrence import MAX_OCCURRENCES, SERIES_BUDGET, never_occurs, occurrences, reach
from booking.rules import BookingRefused, Why
from tests.dates import at, monday
from tests.ics import event

ZONE = "Europe/Paris"


def _calendar(rrule: str, start: datetime) -> icalendar.Calendar:
    return icalendar.Calendar.from_ical(event("s", start, minutes=1, rrule=rrule))


def test_reach_follows_the_rule_density() -> None:
    first = datetime(2030, 1, 1, tzinfo=UTC)
    assert reach(["FREQ=SECONDLY"], first) == first + timedelta(seconds=SERIES_BUDGET)
    assert reach(["FREQ=MINUTELY;INTERVAL=2"], first) == first + timedelta(minutes=2 * 10_000)
    # Five instances a week: 2,000 weeks.
    assert reach(["FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"], first) == first + timedelta(weeks=2000)
    # A daily rule with 60 × 60 seconds a day is as dense as MINUTELY × 60.
    dense = reach(["FREQ=DAILY;BYMINUTE=" + ",".join(map(str, range(60)))], first)
    assert dense == first + timedelta(days=-(-SERIES_BUDGET // 60))
    assert reach([], first).year == 9999


def test_an_endless_secondly_series_expands_quickly_and_capped() -> None:
    start = at(monday(1), 9)
    calendar = _calendar("FREQ=SECONDLY", start)
    window = (datetime.now(UTC) - timedelta(days=366), datetime.now(UTC) + timedelta(days=731))
    found = occurrences(calendar, *window, ZONE)
    assert len(found.spans) == MAX_OCCURRENCES
    first = found.spans[0][0]
    assert found.spans[-1][0] == first + timedelta(seconds=MAX_OCCURRENCES - 1)
    # Complete up to the first occurrence it dropped, not to the window's end.
    assert found.complete_until == first + timedelta(seconds=MAX_OCCURRENCES)
    # Past its reach the series has nothing, whatever the window.
    later = first + timedelta(seconds=SERIES_BUDGET)
    assert occurrences(calendar, later, later + timedelta(days=365), ZONE).spans == []
    beyond = occurrences(calendar, later - timedelta(seconds=10), later + timedelta(days=1), ZONE)
    starts = [s for s, _ in beyond.spans]
    assert max(starts) == later - timedelta(seconds=1)


def test_a_weekly_plage_far_ahead_stops_at_its_reach() -> None:
    start = at(monday(1), 9)
    calendar = _calendar("FREQ=WEEKLY;BYDAY=MO", start)
    far = start.replace(tzinfo=UTC) + timedelta(weeks=SERIES_BUDGET + 10)
    assert occurrences(calendar, far, far + timedelta(days=93), ZONE).spans == []
    near = start.replace(tzinfo=UTC)
    assert len(occurrences(calendar, near, near + timedelta(days=70), ZONE).spans) == 10


def _parsed(rrule: str | None, start: datetime) -> events.ParsedEvent:
    return events.parse(event("p", start, minutes=180, rrule=rrule), ZONE)


@pytest.mark.parametrize(
    "rrule",
    ["FREQ=SECONDLY", "FREQ=MINUTELY;INTERVAL=15", "FREQ=HOURLY", "FREQ=DAILY;BYHOUR=9,14"],
)
def test_sub_daily_repeats_are_refused_in_agendas(rrule: str) -> None:
    parsed = _parsed(rrule, at(monday(), 9))
    with pytest.raises(BookingRefused) as refused:
        limits.check_entry(parsed.master, parsed.start, parsed.end, ZONE, datetime.now(UTC))
    assert refused.value.code == "unsupported-recurrence"


def test_daily_and_weekly_repeats_are_accepted() -> None:
    for rrule in ("FREQ=DAILY", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH", "FREQ=MONTHLY;BYDAY=2TU"):
        parsed = _parsed(rrule, at(monday(), 9))
        limits.check_entry(parsed.master, parsed.start, parsed.end, ZONE, datetime.now(UTC))


@pytest.mark.parametrize(
    ("start", "rrule", "code"),
    [
        (datetime(1969, 12, 1, 9), None, "out-of-range"),
        (at(monday(), 9) + timedelta(days=11 * 366), None, "out-of-range"),
        (at(monday(), 9), "FREQ=WEEKLY;UNTIL=89990101T000000Z", "out-of-range"),
        (at(monday(), 9), "FREQ=WEEKLY;UNTIL=20000101T000000Z", "invalid-recurrence"),
        (at(monday(), 9), "FREQ=WEEKLY;COUNT=20000", "invalid-recurrence"),
    ],
)
def test_dates_out_of_range_are_refused(start: datetime, rrule: str | None, code: str) -> None:
    parsed = _parsed(rrule, start)
    with pytest.raises(BookingRefused) as refused:
        limits.check_entry(parsed.master, parsed.start, parsed.end, ZONE, datetime.now(UTC))
    assert refused.value.code == code


def test_search_window_is_bounded_around_now() -> None:
    now = datetime.now(UTC)
    limits.check_search(now - timedelta(days=300), now + timedelta(days=700), now)
    for start, end in (
        (now - timedelta(days=400), now),
        (now, now + timedelta(days=800)),
        (datetime(8999, 1, 1, tzinfo=UTC), datetime(8999, 4, 1, tzinfo=UTC)),
    ):
        with pytest.raises(BookingRefused) as refused:
            limits.check_search(start, end, now)
        assert refused.value.code == "search-window" and refused.value.why is Why.RULE


def test_a_search_past_its_deadline_gives_up() -> None:
    limits.check_deadline(None)
    limits.check_deadline(limits.deadline())
    with pytest.raises(BookingRefused) as refused:
        limits.check_deadline(0.0)
    assert refused.value.why is Why.OVERLOADED


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
        "FREQ=MONTHLY;BYMONTH=4,6,9,11;BYMONTHDAY=31",
        "FREQ=YEARLY;INTERVAL=4;BYMONTH=2;BYMONTHDAY=29",  # from 2027: never a leap year
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO;BYMONTH=2;BYMONTHDAY=30;UNTIL=20300101T000000Z",
    ],
)
def test_a_rule_that_never_occurs_is_found_at_once(rule: str) -> None:
    started = datetime(2027, 1, 4, 9, tzinfo=UTC)
    assert never_occurs(rule, started)


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=WEEKLY;BYDAY=MO,TU",
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29",  # every four years
        "FREQ=MONTHLY;BYDAY=2TU;UNTIL=20270101T000000Z",  # ended before it began: no judgement
        "FREQ=DAILY;COUNT=3",
    ],
)
def test_a_rule_that_occurs_is_left_alone(rule: str) -> None:
    assert not never_occurs(rule, datetime(2027, 1, 4, 9, tzinfo=UTC))
