"""Test dates relative to today, so that no test expires on a calendar day.

The engine drops slots that start before now, and CI runs the fast suite a
second time with the clock moved years ahead: a test that books, searches or
reads "the future" takes its days from here, never from a literal date.

A relative Monday may fall in a week with a public holiday (Easter Monday,
1 and 8 May, Ascension, Pentecost Monday...) or end on a daylight saving
switch; ``working_monday`` skips those weeks, so a test that books on weekdays
books the same slots whatever the day it runs.
"""

from __future__ import annotations

import functools
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays

PARIS = ZoneInfo("Europe/Paris")


def today() -> date:
    return datetime.now().date()


def monday(weeks_ahead: int = 2) -> date:
    """The Monday ``weeks_ahead`` weeks after this week's Monday (2 by default:
    far enough that every slot of that week is past any minimum delay)."""
    start = today()
    return start - timedelta(days=start.weekday()) + timedelta(weeks=weeks_ahead)


@functools.cache
def _french_holidays(year: int) -> frozenset[date]:
    # Metropolitan France with Pentecost Monday off: what a new organisation gets.
    return frozenset(holidays.France(years=year))


def is_public_holiday(day: date) -> bool:
    return day in _french_holidays(day.year)


def ordinary_week(first: date) -> bool:
    """No public holiday from this Monday to Sunday, and one UTC offset in
    Paris from this Monday to the next."""
    days = [first + timedelta(days=n) for n in range(8)]
    offsets = {datetime(d.year, d.month, d.day, 12, tzinfo=PARIS).utcoffset() for d in days}
    return len(offsets) == 1 and not any(is_public_holiday(d) for d in days[:7])


def working_monday(weeks_ahead: int = 2, weeks: int = 1) -> date:
    """The first Monday at least ``weeks_ahead`` weeks ahead that starts
    ``weeks`` consecutive ordinary weeks: no public holiday, no DST switch."""
    first = monday(weeks_ahead)
    while not all(ordinary_week(first + timedelta(weeks=n)) for n in range(weeks)):
        first += timedelta(weeks=1)
    return first


def holiday_on_a_weekday(after: date) -> date:
    """The first French public holiday after ``after`` that falls Monday to Friday."""
    day = after + timedelta(days=1)
    while day.weekday() >= 5 or not is_public_holiday(day):
        day += timedelta(days=1)
    return day


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """A naive local datetime on ``day`` (tests read it in Europe/Paris)."""
    return datetime(day.year, day.month, day.day, hour, minute)


def working_days(first: date, count: int) -> list[date]:
    """The first ``count`` weekdays from ``first`` on that are no metropolitan
    French public holiday: days a test can book on."""
    days: list[date] = []
    day = first
    while len(days) < count:
        if day.weekday() < 5 and not is_public_holiday(day):
            days.append(day)
        day += timedelta(days=1)
    return days


def weekday_holiday(first: date) -> date:
    """The first metropolitan public holiday from ``first`` on that falls on a
    weekday (there is one within a year)."""
    return holiday_on_a_weekday(first - timedelta(days=1))
