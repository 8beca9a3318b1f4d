"""Occurrence expansion (recurring-ical-events) for the shapes plages and
absences take: every k weeks, k-th weekday of the month, EXDATE, a moved
occurrence (RECURRENCE-ID), an end date, in the organisation's zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import icalendar

from booking.events import build_event
from booking.recurrence import occurrences

PARIS = ZoneInfo("Europe/Paris")


def local_starts(text: str, first: str, last: str) -> list[str]:
    window = (datetime.fromisoformat(first).replace(tzinfo=PARIS),
              datetime.fromisoformat(last).replace(tzinfo=PARIS))  # fmt: skip
    calendar = icalendar.Calendar.from_ical(text)
    return sorted(
        s.astimezone(PARIS).strftime("%Y-%m-%d %H:%M")
        for s, _ in occurrences(calendar, *window, "Europe/Paris").spans
    )


def plage(rrule: dict, extra_events: str = "", exdates=()) -> str:
    start = datetime(2027, 3, 2, 9, 0, tzinfo=PARIS)  # a Tuesday
    text = build_event(
        zone="Europe/Paris",
        start=start,
        end=start.replace(hour=12),
        summary="Plage",
        uid="p",
        rrule=rrule,
        exdates=exdates,
    )
    return text.replace("END:VCALENDAR", extra_events + "END:VCALENDAR")


def test_every_two_weeks_on_two_weekdays_until_a_date() -> None:
    until = datetime(2027, 3, 31, 23, 59, tzinfo=PARIS)
    text = plage({"FREQ": "WEEKLY", "INTERVAL": 2, "BYDAY": ["TU", "TH"], "UNTIL": until})
    assert local_starts(text, "2027-03-01", "2027-05-01") == [
        "2027-03-02 09:00", "2027-03-04 09:00",
        "2027-03-16 09:00", "2027-03-18 09:00",
        "2027-03-30 09:00",  # after the switch to summer time: still 09:00
    ]  # fmt: skip


def test_second_tuesday_of_every_month_starts_on_one() -> None:
    # Asked from Tuesday 2 March (a first Tuesday): DTSTART moves to the 9th,
    # since RFC 5545 would count DTSTART itself as an occurrence.
    text = plage({"FREQ": "MONTHLY", "BYDAY": "2TU"})
    assert "DTSTART;TZID=Europe/Paris:20270309T090000" in text
    assert local_starts(text, "2027-03-01", "2027-06-01") == [
        "2027-03-09 09:00",
        "2027-04-13 09:00",
        "2027-05-11 09:00",
    ]


def test_exdate_and_a_moved_occurrence() -> None:
    moved = (
        "BEGIN:VEVENT\r\nUID:p\r\nDTSTAMP:20270101T000000Z\r\n"
        "RECURRENCE-ID;TZID=Europe/Paris:20270309T090000\r\n"
        "DTSTART;TZID=Europe/Paris:20270310T140000\r\n"
        "DTEND;TZID=Europe/Paris:20270310T170000\r\nSUMMARY:Plage\r\nEND:VEVENT\r\n"
    )
    text = plage(
        {"FREQ": "WEEKLY", "BYDAY": ["TU"]},
        extra_events=moved,
        exdates=[datetime(2027, 3, 16, 9, 0, tzinfo=PARIS)],
    )
    assert local_starts(text, "2027-03-01", "2027-03-31") == [
        "2027-03-02 09:00",
        "2027-03-10 14:00",  # 9 March moved to Wednesday afternoon
        "2027-03-23 09:00",  # 16 March excluded
        "2027-03-30 09:00",
    ]
