"""French public holidays per organisation zone, from the ``holidays`` package.

Zones are the package's subdivisions of France: ``metropole`` (none), Alsace
``6AE`` (departments 67 and 68), Moselle ``57`` (both with Good Friday and
26 December), and the overseas departments (971 Guadeloupe, 972 Martinique,
973 Guyane, 974 La Réunion, 976 Mayotte) and collectivities.  Whether Pentecost
Monday is worked (journée de solidarité) is the organisation's choice.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from booking.model import Interval, Organisation

METROPOLE = "metropole"
# Departments whose holidays differ from the metropolitan calendar.
_DEPARTMENT_ZONES = {"67": "6AE", "68": "6AE", "57": "57"}
_PENTECOST_MONDAY = "Pentecost Monday"


@functools.cache
def _france():  # type: ignore[no-untyped-def]
    # Imported on first use: the package weighs several MiB in every process,
    # and a server that only serves CalDAV never needs it.
    import holidays

    return holidays.France


# ``holidays.France.subdivisions``, written out: the API's schema lists the
# zones when it is imported, which must not import the package (a test checks
# that both agree).
FRANCE_SUBDIVISIONS = (
    "57",
    "6AE",
    "971",
    "972",
    "973",
    "974",
    "976",
    "BL",
    "MF",
    "NC",
    "PF",
    "PM",
    "TF",
    "WF",
    "Zone A",
    "Zone B",
    "Zone C",
)


def zones() -> tuple[str, ...]:
    return (METROPOLE, *FRANCE_SUBDIVISIONS)


def zone_for_department(department: str) -> str:
    """The holiday zone of a French department number ("67", "974", ...)."""
    department = department.strip().upper()
    if department in _DEPARTMENT_ZONES:
        return _DEPARTMENT_ZONES[department]
    return department if department in FRANCE_SUBDIVISIONS else METROPOLE


def validate_zone(zone: str) -> str:
    if zone not in zones():
        raise ValueError(f"unknown holiday zone {zone!r}; known zones: {', '.join(zones())}")
    return zone


@functools.lru_cache(maxsize=256)
def _holidays(zone: str, year: int) -> dict[date, str]:
    subdiv = None if zone == METROPOLE else zone
    return dict(_france()(subdiv=subdiv, years=year, language="en_US"))


def holiday_dates(organisation: Organisation, first: date, last: date) -> list[date]:
    """Holidays of the organisation's zone from ``first`` to ``last`` inclusive."""
    found = []
    for year in range(first.year, last.year + 1):
        for day, name in _holidays(organisation.holiday_zone, year).items():
            if organisation.pentecost_worked and name == _PENTECOST_MONDAY:
                continue
            if first <= day <= last:
                found.append(day)
    return sorted(found)


def holiday_intervals(organisation: Organisation, start: datetime, end: datetime) -> list[Interval]:
    """Whole local days off overlapping [start, end), as UTC intervals (a day is
    23 or 25 hours long on a DST switch)."""
    zone = ZoneInfo(organisation.time_zone)
    first = start.astimezone(zone).date()
    last = end.astimezone(zone).date()
    return [
        Interval(
            datetime.combine(day, time(), zone).astimezone(UTC),
            datetime.combine(day + timedelta(days=1), time(), zone).astimezone(UTC),
        )
        for day in holiday_dates(organisation, first, last)
    ]
