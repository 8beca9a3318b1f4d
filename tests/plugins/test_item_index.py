"""The occurrence index agrees with an independent expansion (recurring-ical-events)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import icalendar
import pytest
import recurring_ical_events
from radicale import item as radicale_item

from plugins.item_index import item_write
from storage.calendars import FAR_FUTURE
from tests.dates import at, monday
from tests.ics import event


def _write(text: str):  # type: ignore[no-untyped-def]
    vobject_item = radicale_item.read_components(text)[0]
    item = radicale_item.Item(collection_path="a/rdv", vobject_item=vobject_item)
    return item_write(item, "x.ics")


def _overlaps(write, start: int, end: int) -> bool:  # type: ignore[no-untyped-def]
    if write.ranges is None:
        return write.t_start < end and write.t_end > start
    return any(s < end and e > start for s, e in write.ranges)


CASES = [
    event("single", datetime(2027, 3, 10, 9, 0)),
    event("weekly", datetime(2027, 1, 4, 9, 0), rrule="FREQ=WEEKLY;COUNT=12"),
    event(
        "biweekly",
        datetime(2027, 1, 4, 9, 0),
        rrule="FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH;UNTIL=20270630T000000Z",
    ),
    event("monthly", datetime(2027, 1, 12, 14, 0), rrule="FREQ=MONTHLY;BYDAY=2TU;COUNT=8"),
    event("dst", datetime(2027, 3, 22, 9, 0), rrule="FREQ=DAILY;COUNT=20"),
    event(
        "exdate",
        datetime(2027, 1, 4, 9, 0),
        rrule="FREQ=WEEKLY;COUNT=6",
        extra="EXDATE;TZID=Europe/Paris:20270111T090000,20270125T090000",
    ),
]


@pytest.mark.parametrize("text", CASES, ids=lambda t: t.split("UID:")[1].split("\r")[0])
def test_index_matches_independent_expansion_week_by_week(text: str) -> None:
    write = _write(text)
    calendar = icalendar.Calendar.from_ical(text)
    week = datetime(2026, 12, 28, tzinfo=UTC)
    for _ in range(40):
        end = week + timedelta(days=7)
        expected = bool(recurring_ical_events.of(calendar).between(week, end))
        assert _overlaps(write, int(week.timestamp()), int(end.timestamp())) == expected, week
        week = end


def test_single_event_needs_no_occurrence_rows() -> None:
    write = _write(CASES[0])
    assert write.ranges is None and write.ranges_until is None
    assert write.t_end - write.t_start == 1800


def test_open_ended_series_is_indexed_up_to_a_horizon() -> None:
    # Starting ahead of now, the horizon counts from the series' start.
    write = _write(event("open", at(monday(), 9), rrule="FREQ=WEEKLY"))
    assert write.ranges and 150 < len(write.ranges) < 200  # about three years of weeks
    assert write.ranges_until is not None and write.ranges_until < FAR_FUTURE
    assert write.t_end > write.ranges_until  # enclosing range stays open-ended


def test_dst_switch_keeps_local_time() -> None:
    write = _write(CASES[4])
    before = datetime.fromtimestamp(write.ranges[0][0], UTC)  # 2027-03-22, CET
    after = datetime.fromtimestamp(write.ranges[10][0], UTC)  # 2027-04-01, CEST
    assert (before.hour, after.hour) == (8, 7)
