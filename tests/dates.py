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
