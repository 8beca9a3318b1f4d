"""The rules read from a text's lines are the ones icalendar finds, each with
its component's start."""

from __future__ import annotations

from datetime import datetime, time

import icalendar
import pytest

from booking.recurrence import rules_of
from plugins.rule_scan import rules_with_starts
from tests.bench import workload
from tests.plugins.series import SERIES

FOLDED = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VTODO\r\nUID:t\r\n"
    "DTSTART;VALUE=DATE:20270104\r\nRRULE:FREQ=DAILY;BYMONTH=2;\r\n BYMONTHDAY=30\r\n"
    "END:VTODO\r\nBEGIN:VEVENT\r\nUID:e\r\nRRULE:FREQ=WEEKLY\r\nDTSTART:20270105T080000Z\r\n"
    "END:VEVENT\r\nBEGIN:VEVENT\r\nUID:no-start\r\nRRULE:FREQ=DAILY\r\nEND:VEVENT\r\n"
    "END:VCALENDAR\r\n"
)


def _parts(found: list[tuple[str, datetime]]) -> list[tuple[tuple[str, ...], datetime]]:
    """Rules compared by their parts (icalendar writes them in its own order)."""
    return sorted((tuple(sorted(rule.split(";"))), start) for rule, start in found)


def _with_icalendar(text: str) -> list[tuple[tuple[str, ...], datetime]]:
    found = []
    for component in icalendar.Calendar.from_ical(text).walk():
        start = component.get("DTSTART")
        if start is None:
            continue
        first = start.dt
        first = first if isinstance(first, datetime) else datetime.combine(first, time())
        found += [(rule, first.replace(tzinfo=None)) for rule in rules_of(component)]
    return _parts(found)


@pytest.mark.parametrize(
    "text",
    [*SERIES.values(), FOLDED, *(o.text for o in workload.generate(30, 2027))],
    ids=[*SERIES, "folded", *(f"workload{i}" for i in range(30))],
)
def test_rules_and_starts_are_icalendar_s(text: str) -> None:
    assert _parts(list(rules_with_starts(text))) == _with_icalendar(text)


def test_a_folded_rule_is_read_whole() -> None:
    rules = dict(rules_with_starts(FOLDED))
    assert "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30" in rules
    assert rules["FREQ=WEEKLY"] == datetime(2027, 1, 5, 8, 0)
