"""Occurrences of plages, absences and events, by recurring-ical-events.

That library applies RRULE, RDATE, EXDATE and RECURRENCE-ID overrides in the
event's own time zone, so a weekly 09:00 plage stays at 09:00 local time across
both daylight-saving switches; we only convert the result to UTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import icalendar
from dateutil import rrule as dateutil_rrule


def _aware(value: date | datetime, zone: ZoneInfo) -> datetime:
    if not isinstance(value, datetime):
        value = datetime.combine(value, time())
    if value.tzinfo is None:  # floating time: the organisation's zone
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def span(event: icalendar.Event, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """An event's start and end in UTC (RFC 5545 3.6.1: no DTEND nor DURATION
    means the start instant, or the whole day for a date)."""
    begin = _aware(event["DTSTART"].dt, zone)
    if "DTEND" in event:
        return begin, _aware(event["DTEND"].dt, zone)
    if "DURATION" in event:
        return begin, begin + event["DURATION"].dt
    if isinstance(event["DTSTART"].dt, datetime):
        return begin, begin
    return begin, begin + timedelta(days=1)


def occurrences(
    calendar: icalendar.Calendar, start: datetime, end: datetime, zone: str
) -> Iterator[tuple[datetime, datetime, icalendar.Event]]:
    """Every VEVENT occurrence overlapping [start, end), as UTC instants."""
    # Imported on first use (several MiB): most requests never expand a series.
    import recurring_ical_events

    tz = ZoneInfo(zone)
    query = recurring_ical_events.of(calendar, components=["VEVENT"])
    for event in query.between(start, end):
        begin, finish = span(event, tz)
        if begin < end and finish > start:
            yield begin, finish, event


_WEEKDAYS = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}


def first_matching(start: datetime, rule: dict) -> datetime:
    """The first instant from ``start`` that the rule produces.  RFC 5545
    counts DTSTART as an occurrence even when the rule would not produce it,
    so a series must start on a day of its own pattern (a "2nd Tuesday" plage
    created on a Monday starts on the next 2nd Tuesday)."""
    frequency = {"WEEKLY": dateutil_rrule.WEEKLY, "MONTHLY": dateutil_rrule.MONTHLY}[rule["FREQ"]]
    days = rule.get("BYDAY") or []
    byweekday = []
    for day in [days] if isinstance(days, str) else days:
        nth, code = day[:-2], day[-2:]
        weekday = dateutil_rrule.weekday(_WEEKDAYS[code])
        byweekday.append(weekday(int(nth)) if nth else weekday)
    naive = start.replace(tzinfo=None)
    found = dateutil_rrule.rrule(
        frequency,
        dtstart=naive,
        interval=int(rule.get("INTERVAL", 1)),
        byweekday=byweekday or None,
        count=1,
    )[0]
    return found.replace(tzinfo=start.tzinfo)
