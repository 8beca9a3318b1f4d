"""Test dates relative to today, so that no test expires on a calendar day.

The engine drops slots that start before now, and CI runs the suite a second
time with the clock moved years ahead: a test that books, searches or reads
"the future" takes its days from here, never from a literal date.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta


def today() -> date:
    return datetime.now().date()


def monday(weeks_ahead: int = 2) -> date:
    """The Monday ``weeks_ahead`` weeks after this week's Monday (2 by default:
    far enough that every slot of that week is past any minimum delay)."""
    start = today()
    return start - timedelta(days=start.weekday()) + timedelta(weeks=weeks_ahead)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """A naive local datetime on ``day`` (tests read it in Europe/Paris)."""
    return datetime(day.year, day.month, day.day, hour, minute)


def _french_holidays(first: date, last: date) -> set[date]:
    import holidays  # the calendar the engine reads too, as an outside oracle

    return set(holidays.France(years=range(first.year, last.year + 1)))


def working_days(first: date, count: int) -> list[date]:
    """The first ``count`` weekdays from ``first`` on that are no metropolitan
    French public holiday: days a test can book on."""
    horizon = first + timedelta(days=2 * count + 30)
    off = _french_holidays(first, horizon)
    days = (first + timedelta(days=n) for n in range((horizon - first).days))
    return [d for d in days if d.weekday() < 5 and d not in off][:count]


def weekday_holiday(first: date) -> date:
    """The first metropolitan public holiday from ``first`` on that falls on a
    weekday (there is one within a year)."""
    off = _french_holidays(first, first + timedelta(days=366))
    return min(d for d in off if d >= first and d.weekday() < 5)
