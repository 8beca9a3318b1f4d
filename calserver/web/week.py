"""A week of créneaux as the pages show it (the public journey's créneaux
step and the usager's move): which seven days, which slots each day, the
previous and next weeks, and the next availability when the week has none.

The search itself is the caller's (a motif's public slots, or one agent's
for a move); this module only lays its answer out, in the organisation's
zone, never past the last day the motif's delays allow.  The template half is
the ``week`` macro of ``templates/_week.html``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from booking.model import Creneau

DAYS = 7


@dataclass(frozen=True)
class Week:
    first: date
    last_day: date  # the last day a slot may be on (the motif's horizon)
    zone: ZoneInfo
    days: list[tuple[datetime, list[Creneau]]]
    previous: str | None  # the previous week's first day (ISO), when it is not past
    next: str | None
    following: Creneau | None  # the next slot after an empty week

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone)


@dataclass(frozen=True)
class Window:
    """The days a week page asks its search for: [start, end) in UTC terms."""

    first: date
    today: date
    last_day: date
    zone: ZoneInfo

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), self.zone)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=DAYS)


def window(wanted: date | None, now: datetime, horizon: datetime, zone: str) -> Window:
    """The week from ``wanted`` (today by default), kept between today and the
    horizon's day."""
    tz = ZoneInfo(zone)
    today = now.astimezone(tz).date()
    last_day = horizon.astimezone(tz).date()
    return Window(min(max(wanted or today, today), last_day), today, last_day, tz)


def laid_out(
    span: Window,
    found: list[Creneau],
    following: Callable[[datetime], Creneau | None],
) -> Week:
    """The week of ``found``; ``following(after)`` is asked only when the
    week has no slot."""
    days = []
    for offset in range(DAYS):
        day = span.first + timedelta(days=offset)
        if day > span.last_day:
            break
        slots = [c for c in found if c.start.astimezone(span.zone).date() == day]
        days.append((datetime.combine(day, time(), span.zone), slots))
    earlier, later = span.first - timedelta(days=DAYS), span.first + timedelta(days=DAYS)
    return Week(
        first=span.first,
        last_day=span.last_day,
        zone=span.zone,
        days=days,
        previous=earlier.isoformat() if span.first > span.today else None,
        next=later.isoformat() if later <= span.last_day else None,
        following=None if found else following(span.end),
    )
