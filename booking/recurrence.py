"""Occurrences of plages, absences and events, by recurring-ical-events.

That library applies RRULE, RDATE, EXDATE and RECURRENCE-ID overrides in the
event's own time zone, so a weekly 09:00 plage stays at 09:00 local time across
both daylight-saving switches; we only convert the result to UTC.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
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


# Every expansion of a series, wherever it happens (booking index, searches,
# time-range filters), stops where the series' rule would have produced
# SERIES_BUDGET instances: Radicale refuses a finite series longer than this,
# and an open-ended one counts as if it stopped there.  One expansion also
# returns at most MAX_OCCURRENCES occurrences (and says where it stopped).
SERIES_BUDGET = 10_000
MAX_OCCURRENCES = 2_000
# Frequencies that repeat within a day: refused in the booking agendas.
SUB_DAILY = frozenset({"SECONDLY", "MINUTELY", "HOURLY"})
_SHORTEST_PERIOD = {  # seconds; the shortest month and year, so reach is a lower bound
    "SECONDLY": 1,
    "MINUTELY": 60,
    "HOURLY": 3600,
    "DAILY": 86_400,
    "WEEKLY": 7 * 86_400,
    "MONTHLY": 28 * 86_400,
    "YEARLY": 365 * 86_400,
}
FAR_FUTURE = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


def rule_parts(rule: str) -> dict[str, str]:
    """An RRULE value as {"FREQ": "WEEKLY", "BYDAY": "MO,TU", ...}."""
    parts = (p.split("=", 1) for p in rule.upper().split(";") if "=" in p)
    return {name.strip(): value.strip() for name, value in parts}


def _count(parts: dict[str, str], name: str) -> int:
    value = parts.get(name)
    return len(value.split(",")) if value else 1


def instances_per_period(parts: dict[str, str]) -> int:
    """An upper bound of the instances one period of the rule produces (its
    BYxxx parts that expand, RFC 5545 3.3.10's table)."""
    freq = parts.get("FREQ", "SECONDLY")
    times = {
        "SECONDLY": 1,
        "MINUTELY": _count(parts, "BYSECOND"),
        "HOURLY": _count(parts, "BYMINUTE") * _count(parts, "BYSECOND"),
    }.get(freq, _count(parts, "BYHOUR") * _count(parts, "BYMINUTE") * _count(parts, "BYSECOND"))
    days = 1
    by_day = _count(parts, "BYDAY") if "BYDAY" in parts else 0
    by_monthday = _count(parts, "BYMONTHDAY") if "BYMONTHDAY" in parts else 0
    if freq == "WEEKLY":
        days = max(by_day, 1)
    elif freq == "MONTHLY":
        days = by_monthday or 5 * by_day or 1
    elif freq == "YEARLY":
        if "BYYEARDAY" in parts:
            days = _count(parts, "BYYEARDAY")
        elif "BYWEEKNO" in parts:
            days = _count(parts, "BYWEEKNO") * (by_day or 7)
        elif "BYMONTH" in parts:
            days = _count(parts, "BYMONTH") * (by_monthday or 5 * by_day or 1)
        else:
            days = by_monthday * 12 or 53 * by_day or 1
    return days * times


def reach(rules: Iterable[str], first: datetime) -> datetime:
    """Where expanding a series that starts at ``first`` stops: the earliest
    instant by which one of its rules may have produced SERIES_BUDGET
    instances.  Arithmetic on the rule, so it costs nothing whatever the
    rule; a series without a rule (RDATEs only) is not limited here."""
    found = FAR_FUTURE
    for rule in rules:
        parts = rule_parts(rule)
        interval = parts.get("INTERVAL", "1")
        step = _SHORTEST_PERIOD.get(parts.get("FREQ", ""), 1)
        step *= int(interval) if interval.isdigit() and int(interval) > 0 else 1
        periods = -(-SERIES_BUDGET // instances_per_period(parts))
        try:
            found = min(found, first.astimezone(UTC) + timedelta(seconds=step * periods))
        except OverflowError:
            continue
    return found


def rules_of(event: icalendar.Event) -> list[str]:
    """The RRULE values of an icalendar VEVENT, as text."""
    found = event.get("RRULE")
    if found is None:
        return []
    return [r.to_ical().decode() for r in (found if isinstance(found, list) else [found])]


@dataclass
class Expansion:
    """Occurrences of a calendar's series in a window, as UTC instants, and
    the instant up to which they are complete (the window's end, unless
    MAX_OCCURRENCES cut the expansion short)."""

    spans: list[tuple[datetime, datetime]]
    complete_until: datetime


def occurrences(
    calendar: icalendar.Calendar,
    start: datetime,
    end: datetime,
    zone: str,
    limit: int = MAX_OCCURRENCES,
) -> Expansion:
    """Every VEVENT occurrence overlapping [start, end), each series stopped at
    its ``reach``, at most ``limit`` in all (the latest dropped)."""
    # Imported on first use (several MiB): most requests never expand a series.
    import recurring_ical_events

    tz = ZoneInfo(zone)
    stops = {
        str(event.get("UID", "")): reach(rules_of(event), _aware(event["DTSTART"].dt, tz))
        for event in calendar.walk("VEVENT")
        if "RECURRENCE-ID" not in event and "DTSTART" in event
    }
    query = recurring_ical_events.of(calendar, components=["VEVENT"])
    spans: list[tuple[datetime, datetime]] = []
    for series in query.series:
        stop = min(end, stops.get(str(series.uid), end))
        if stop <= start:
            continue
        for occurrence in series.between(start, stop):
            begin, finish = _aware(occurrence.start, tz), _aware(occurrence.end, tz)
            if finish == begin and not isinstance(occurrence.start, datetime):
                finish = begin + timedelta(days=1)
            if begin < stop and finish > start:
                spans.append((begin, finish))
            if len(spans) > limit:
                break
    spans.sort()
    if len(spans) <= limit:
        return Expansion(spans, end)
    return Expansion(spans[:limit], spans[limit][0])


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


# The Gregorian calendar repeats itself every 400 years (146,097 days, a whole
# number of weeks and of months), so a rule that yields nothing in 400 years
# from its start never yields anything.
_CYCLE_YEARS = 400
_PROBE_FROM_YEAR = 9999 - 2 * _CYCLE_YEARS


def never_occurs(rule: str, start: datetime) -> bool:
    """Whether an RRULE starting at ``start`` never produces an occurrence
    (``FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30``).  dateutil looks for the next
    occurrence of such a rule until the year 9999, which costs minutes of CPU
    to whoever expands it (Radicale, on every PUT); here the start is moved
    by whole 400-year cycles near that year, so the same search gives up
    after at most two cycles (well under a second) with the same answer."""
    naive = start.replace(tzinfo=None)
    cycles = max(0, (_PROBE_FROM_YEAR - naive.year) // _CYCLE_YEARS)
    try:
        probe = naive.replace(year=naive.year + cycles * _CYCLE_YEARS)
        parsed = dateutil_rrule.rrulestr(rule, dtstart=probe, ignoretz=True)
    except (ValueError, TypeError):
        return False  # not ours to judge: the parser refuses what it cannot read
    if not isinstance(parsed, dateutil_rrule.rrule):
        return False
    return parsed.replace(count=1, until=None).after(probe, inc=True) is None
