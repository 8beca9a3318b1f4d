"""Awkward recurring series, and what ``recurring_ical_events`` makes of them:
the expectation an expanding answer is checked against."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import icalendar
import recurring_ical_events

from tests.ics import PARIS_VTIMEZONE

NEW_YORK_VTIMEZONE = (
    "BEGIN:VTIMEZONE\r\nTZID:America/New_York\r\n"
    "BEGIN:DAYLIGHT\r\nTZOFFSETFROM:-0500\r\nTZOFFSETTO:-0400\r\nTZNAME:EDT\r\n"
    "DTSTART:19700308T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\r\nEND:DAYLIGHT\r\n"
    "BEGIN:STANDARD\r\nTZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\nTZNAME:EST\r\n"
    "DTSTART:19701101T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU\r\nEND:STANDARD\r\n"
    "END:VTIMEZONE\r\n"
)
# March 2027: the USA change time on the 14th, France on the 28th.
MARCH = (datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 4, 1, tzinfo=UTC))


def _calendar(*events: str, timezones: str = PARIS_VTIMEZONE) -> str:
    body = "".join(
        "BEGIN:VEVENT\r\n" + "".join(line + "\r\n" for line in e.strip().splitlines())
        + "END:VEVENT\r\n"
        for e in events
    )  # fmt: skip
    head = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tests//EN\r\n"
    return f"{head}{timezones}{body}END:VCALENDAR\r\n"


SERIES = {
    # Weekly at 09:00 Paris across the change to summer time (08:00Z, then 07:00Z).
    "dst.ics": _calendar("""
UID:dst
DTSTAMP:20260101T000000Z
DTSTART;TZID=Europe/Paris:20270315T090000
DTEND;TZID=Europe/Paris:20270315T093000
RRULE:FREQ=WEEKLY;COUNT=6
SUMMARY:Permanence
"""),
    # An EXDATE, an instance moved within March, one moved out of it (to May)
    # and one moved into it (from April), with a different summary each.
    "overrides.ics": _calendar(
        """
UID:over
DTSTAMP:20260101T000000Z
DTSTART;TZID=Europe/Paris:20270302T140000
DTEND;TZID=Europe/Paris:20270302T150000
RRULE:FREQ=WEEKLY;BYDAY=TU;COUNT=8
EXDATE;TZID=Europe/Paris:20270309T140000
SUMMARY:Atelier
""",
        """
UID:over
DTSTAMP:20260101T000000Z
RECURRENCE-ID;TZID=Europe/Paris:20270316T140000
DTSTART;TZID=Europe/Paris:20270317T100000
DTEND;TZID=Europe/Paris:20270317T113000
SUMMARY:Atelier (déplacé)
""",
        """
UID:over
DTSTAMP:20260101T000000Z
RECURRENCE-ID;TZID=Europe/Paris:20270323T140000
DTSTART;TZID=Europe/Paris:20270504T140000
DTEND;TZID=Europe/Paris:20270504T150000
SUMMARY:Atelier (reporté)
""",
        """
UID:over
DTSTAMP:20260101T000000Z
RECURRENCE-ID;TZID=Europe/Paris:20270406T140000
DTSTART;TZID=Europe/Paris:20270331T160000
DTEND;TZID=Europe/Paris:20270331T170000
SUMMARY:Atelier (avancé)
""",
    ),
    # All day, every day for ten days, one day excluded, one day overridden.
    "allday.ics": _calendar(
        """
UID:allday
DTSTAMP:20260101T000000Z
DTSTART;VALUE=DATE:20270325
DTEND;VALUE=DATE:20270326
RRULE:FREQ=DAILY;COUNT=10
EXDATE;VALUE=DATE:20270327
SUMMARY:Fermeture
""",
        """
UID:allday
DTSTAMP:20260101T000000Z
RECURRENCE-ID;VALUE=DATE:20270329
DTSTART;VALUE=DATE:20270329
DTEND;VALUE=DATE:20270330
SUMMARY:Fermeture (matin)
""",
    ),
    # New York, with a DURATION, across the American change of time.
    "new-york.ics": _calendar(
        """
UID:ny
DTSTAMP:20260101T000000Z
DTSTART;TZID=America/New_York:20270308T170000
DURATION:PT45M
RRULE:FREQ=DAILY;INTERVAL=3;UNTIL=20270320T220000Z
SUMMARY:Call
""",
        timezones=NEW_YORK_VTIMEZONE,
    ),
    # Floating times with extra RDATEs.
    "floating.ics": _calendar("""
UID:float
DTSTAMP:20260101T000000Z
DTSTART:20270301T120000
DTEND:20270301T130000
RRULE:FREQ=WEEKLY;COUNT=2
RDATE:20270320T120000,20270330T120000
SUMMARY:Déjeuner
"""),
    # Every first Monday, forever.
    "forever.ics": _calendar("""
UID:forever
DTSTAMP:20260101T000000Z
DTSTART;TZID=Europe/Paris:20250106T083000
DTEND;TZID=Europe/Paris:20250106T090000
RRULE:FREQ=MONTHLY;BYDAY=1MO
SUMMARY:Réunion de service
"""),
    # A single event, and one of no duration on the window's first second.
    "single.ics": _calendar("""
UID:single
DTSTAMP:20260101T000000Z
DTSTART;TZID=Europe/Paris:20270330T183000
DTEND;TZID=Europe/Paris:20270330T200000
SUMMARY:Conseil
"""),
    "instant.ics": _calendar("""
UID:instant
DTSTAMP:20260101T000000Z
DTSTART:20270301T000000Z
SUMMARY:Ouverture
"""),
    # Outside March altogether.
    "june.ics": _calendar("""
UID:june
DTSTAMP:20260101T000000Z
DTSTART;TZID=Europe/Paris:20270601T090000
DTEND;TZID=Europe/Paris:20270601T100000
RRULE:FREQ=DAILY;COUNT=3
SUMMARY:Hors fenêtre
"""),
}

Instance = tuple[str, object, object, object, str]  # uid, start, end, recurrence-id, summary


def _utc(value: object) -> object:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def expected(text: str, window: tuple[datetime, datetime]) -> set[Instance]:
    """The instances ``recurring_ical_events`` finds in the window, in UTC; the
    RECURRENCE-ID only for a recurring item (it adds one to single events)."""
    calendar = icalendar.Calendar.from_ical(text)
    recurring = any(
        "RRULE" in e or "RDATE" in e or "RECURRENCE-ID" in e for e in calendar.walk("VEVENT")
    )
    return {
        (
            str(e["UID"]),
            _utc(e.start),
            _utc(e.end),
            _utc(e["RECURRENCE-ID"].dt) if recurring else None,
            str(e["SUMMARY"]),
        )
        for e in recurring_ical_events.of(calendar).between(*window)
    }


def found(data: str) -> set[Instance]:
    """The instances of an expanded calendar-data, checking it is expanded:
    every time in UTC (or a date), no time zone, no recurrence rule."""
    calendar = icalendar.Calendar.from_ical(data)
    assert not calendar.walk("VTIMEZONE")
    result = set()
    for e in calendar.walk("VEVENT"):
        assert not {"RRULE", "RDATE", "EXDATE", "EXRULE"} & set(e)
        for name in ("DTSTART", "DTEND", "RECURRENCE-ID"):
            if name in e and isinstance(e[name].dt, datetime):
                assert e[name].to_ical().endswith(b"Z"), (name, e[name].to_ical())
        start = _utc(e["DTSTART"].dt)
        end = _utc(e["DTEND"].dt) if "DTEND" in e else (
            start if isinstance(start, datetime) else start + timedelta(days=1)
        )  # fmt: skip
        rid = _utc(e["RECURRENCE-ID"].dt) if "RECURRENCE-ID" in e else None
        result.add((str(e["UID"]), start, end, rid, str(e["SUMMARY"])))
    return result


def timestamps(window: tuple[datetime, datetime]) -> tuple[int, int]:
    return int(window[0].timestamp()), int(window[1].timestamp())


def on(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
