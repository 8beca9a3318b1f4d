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
import recurring_ical_events


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
    tz = ZoneInfo(zone)
    query = recurring_ical_events.of(calendar, components=["VEVENT"])
    for event in query.between(start, end):
        begin, finish = span(event, tz)
        if begin < end and finish > start:
            yield begin, finish, event
