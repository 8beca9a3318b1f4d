"""What one request may ask of the server, so that none can stall it.

Agenda entries (RDVs, plages, absences) keep their dates between 1970 and ten
years ahead and repeat at most daily; créneaux searches stay between a year
back and two years ahead and give up after a few seconds.  Every path (CalDAV
through ``booking.agenda.prepare_write``, the JSON API before it builds an
event) calls these functions, so a limit cannot differ between paths.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar

from booking.recurrence import SERIES_BUDGET, SUB_DAILY
from booking.rules import BookingRefused, Why

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
AHEAD = timedelta(days=3653)  # ten years
SEARCH_BACK = timedelta(days=366)
SEARCH_AHEAD = timedelta(days=2 * 366)
# Wall-clock seconds one créneaux search may take before it is given up (503).
SEARCH_SECONDS = 5.0


def latest(now: datetime) -> datetime:
    return now + AHEAD


def check_span(start: datetime, end: datetime, now: datetime) -> None:
    """An agenda entry's first occurrence lies between 1970 and ten years ahead."""
    for moment in (start, end):
        if not EARLIEST <= moment <= latest(now):
            raise BookingRefused(
                "out-of-range",
                f"dates of RDVs, plages and absences lie between 1970 and {latest(now).year}",
            )


def check_until(until: datetime, start: datetime, now: datetime) -> None:
    """A repetition ends after its first occurrence and at most ten years ahead."""
    if until < start:
        raise BookingRefused(
            "invalid-recurrence", "the repetition ends before its first occurrence"
        )
    if until > latest(now):
        raise BookingRefused(
            "out-of-range",
            f"a repetition ends by {latest(now).year} at the latest; leave its end out "
            "to repeat with no end",
        )


def _until(value: date | datetime, zone: str) -> datetime:
    """UNTIL as an instant: a date includes its whole day."""
    if not isinstance(value, datetime):
        return datetime.combine(value + timedelta(days=1), datetime.min.time(), UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(zone))
    return value.astimezone(UTC)


def check_entry(
    master: icalendar.Event, start: datetime, end: datetime, zone: str, now: datetime
) -> None:
    """The dates and the recurrence of an RDV, plage or absence (its master
    VEVENT, its first occurrence in UTC): BookingRefused unless the server
    can work on it in bounded time."""
    check_span(start, end, now)
    found = master.get("RRULE")
    for rule in found if isinstance(found, list) else [found] if found is not None else []:
        frequency = str((rule.get("FREQ") or [""])[0]).upper()
        times = ("BYHOUR", "BYMINUTE", "BYSECOND")
        if frequency in SUB_DAILY or any(len(rule.get(part, [])) > 1 for part in times):
            raise BookingRefused(
                "unsupported-recurrence",
                "RDVs, plages and absences repeat at most once a day "
                f"(not {frequency.lower() or 'several times a day'})",
            )
        for count in rule.get("COUNT", []):
            if int(count) > SERIES_BUDGET:
                raise BookingRefused(
                    "invalid-recurrence", f"a repetition has at most {SERIES_BUDGET} occurrences"
                )
        for until in rule.get("UNTIL", []):
            check_until(_until(until, zone), start, now)


def check_search(start: datetime, end: datetime, now: datetime) -> None:
    """A créneaux search looks from a year back to two years ahead (422 otherwise)."""
    if start < now - SEARCH_BACK or end > now + SEARCH_AHEAD:
        raise BookingRefused(
            "search-window",
            "créneaux are searched from a year back to two years ahead "
            f"({(now - SEARCH_BACK).date()} to {(now + SEARCH_AHEAD).date()})",
        )


def deadline() -> float:
    """The monotonic instant a search started now must be done by."""
    return time.monotonic() + SEARCH_SECONDS


def check_deadline(by: float | None) -> None:
    if by is not None and time.monotonic() > by:
        raise BookingRefused(
            "search-too-long",
            "this search took too long; ask for a shorter period, a lieu or some agents",
            Why.OVERLOADED,
        )
