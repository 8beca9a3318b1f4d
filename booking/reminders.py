"""When a usager's reminder goes out: 48 hours before the RDV, never on a
Sunday or a public holiday of the organisation's zone.

When the 48-hour mark falls on such a day, the reminder goes at the same
clock time (in the organisation's zone) on the latest earlier day that is
neither; no reminder when that moment has already passed at booking time.
A Pentecost Monday the organisation works is a working day here too.  Plain
data in, plain data out: the caller schedules what this answers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from booking.model import Organisation
from booking.public_holidays import holiday_dates

AHEAD = timedelta(hours=48)
SUNDAY = 6


def reminder_moment(
    starts_at: datetime, organisation: Organisation, now: datetime
) -> datetime | None:
    """The moment the reminder of an RDV starting at ``starts_at`` is sent
    (UTC), or None when it would already be past at ``now``."""
    zone = ZoneInfo(organisation.time_zone)
    mark = (starts_at - AHEAD).astimezone(zone)
    day = mark.date()
    days_off = set(holiday_dates(organisation, day - timedelta(days=14), day))
    while day.weekday() == SUNDAY or day in days_off:
        day -= timedelta(days=1)
    moment = datetime.combine(day, mark.timetz().replace(tzinfo=None), zone).astimezone(UTC)
    return moment if moment > now else None
