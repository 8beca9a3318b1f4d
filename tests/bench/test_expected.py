"""The benchmarks' oracles, on plain data: the slots and feed events a workload
implies, computed without the engine (no server, no clock: the dates here are
fed to pure functions, never to the engine's "now")."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from tests.bench.booking_bench import expected_pairs
from tests.bench.booking_load import PARIS, Organisation
from tests.bench.feed_bench import expected_events

PLAIN_WEEK = date(2027, 6, 7)  # a Monday, no public holiday that week
ASCENSION_WEEK = date(2027, 5, 3)  # Ascension Day is Thursday 2027-05-06


def _org(absences: list[datetime], rdvs: list[datetime], past: list[datetime]) -> Organisation:
    return Organisation([7], ["agent0000"], 1, 1, {7: absences}, {7: rdvs}, past)


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), PARIS)


def test_a_free_week_offers_twelve_slots_a_business_day() -> None:
    pairs = expected_pairs(_org([], [], []), PLAIN_WEEK, 7)
    assert len(pairs) == 5 * 12
    assert (_at(PLAIN_WEEK, 9), 7) in pairs and (_at(PLAIN_WEEK, 16, 30), 7) in pairs
    assert (_at(PLAIN_WEEK, 12), 7) not in pairs


def test_absences_rdvs_and_holidays_take_their_slots() -> None:
    tuesday = date(2027, 6, 8)
    org = _org([_at(PLAIN_WEEK, 9)], [_at(tuesday, 14, 30)], [])
    pairs = expected_pairs(org, PLAIN_WEEK, 7)
    assert len(pairs) == 60 - 6 - 1
    assert (_at(tuesday, 14, 30), 7) not in pairs and (_at(tuesday, 15), 7) in pairs
    assert len(expected_pairs(_org([], [], []), ASCENSION_WEEK, 7)) == 4 * 12


def test_feed_events_are_the_rdvs_inside_the_window() -> None:
    today = date.today()
    inside = [_at(today, 10)]
    outside = [datetime(2000, 1, 3, 9, tzinfo=UTC)]
    assert expected_events(_org([], inside, outside), today) == 1
