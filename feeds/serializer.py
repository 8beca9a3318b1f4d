"""The one serializer of what may leave the server about an agent's agenda.

It takes ``FeedEvent`` values, which hold only whitelisted fields, and writes
those fields and nothing else: UID, DTSTAMP, DTSTART, DTEND, SEQUENCE,
LAST-MODIFIED, SUMMARY (the motif's name), LOCATION (by location type),
DESCRIPTION and URL (the RDV in the back office), STATUS, and TRANSP for
plages.  No usager's name, email, phone, address or note can reach it: no
field of ``FeedEvent`` holds one.  Microsoft 365 sync will reuse it.

Output follows what Outlook and Google expect: CRLF line ends, lines folded at
75 octets (icalendar does both), a VTIMEZONE for every TZID, X-WR-CALNAME,
REFRESH-INTERVAL and X-PUBLISHED-TTL.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar

PRODID = "-//calserver//feed//FR"
WHITELIST = frozenset(
    {
        "UID",
        "DTSTAMP",
        "DTSTART",
        "DTEND",
        "SEQUENCE",
        "LAST-MODIFIED",
        "SUMMARY",
        "LOCATION",
        "DESCRIPTION",
        "URL",
        "STATUS",
        "TRANSP",
    }
)


@dataclass(frozen=True)
class FeedEvent:
    uid: str
    start: datetime
    end: datetime
    summary: str
    last_modified: datetime
    sequence: int = 0
    location: str | None = None
    url: str | None = None
    status: str = "CONFIRMED"
    transparent: bool = False


@functools.lru_cache(maxsize=20_000)
def vevent_bytes(event: FeedEvent, zone: str) -> bytes:
    """One VEVENT, serialized once per version of the event and kept: a feed
    is polled again and again and icalendar takes ~0.4 ms per event.  DTSTAMP
    is the event's last change, so the same event always gives the same bytes
    (the feed's strong ETag promises exactly that)."""
    tz = ZoneInfo(zone)
    vevent = icalendar.Event()
    vevent.add("UID", event.uid)
    vevent.add("DTSTAMP", event.last_modified.astimezone(UTC))
    vevent.add("DTSTART", event.start.astimezone(tz))
    vevent.add("DTEND", event.end.astimezone(tz))
    vevent.add("SEQUENCE", event.sequence)
    vevent.add("LAST-MODIFIED", event.last_modified.astimezone(UTC))
    vevent.add("SUMMARY", event.summary)
    if event.location:
        vevent.add("LOCATION", event.location)
    if event.url:
        vevent.add("URL", event.url)
        vevent.add("DESCRIPTION", f"Voir le RDV : {event.url}")
    vevent.add("STATUS", event.status)
    if event.transparent:
        vevent.add("TRANSP", "TRANSPARENT")
    assert set(vevent.keys()) <= WHITELIST
    return vevent.to_ical()


def serialize(
    name: str,
    zone: str,
    events: Iterable[FeedEvent],
    *,
    refresh: timedelta,
    first: date,
    last: date,
) -> bytes:
    """The whole feed, as the bytes of one VCALENDAR; the VTIMEZONE covers
    the transitions from ``first`` to ``last`` (the feed's window)."""
    calendar = icalendar.Calendar()
    calendar.add("PRODID", PRODID)
    calendar.add("VERSION", "2.0")
    calendar.add("CALSCALE", "GREGORIAN")
    calendar.add("METHOD", "PUBLISH")
    calendar.add("X-WR-CALNAME", name)
    calendar.add("X-WR-TIMEZONE", zone)
    calendar.add("REFRESH-INTERVAL", refresh, parameters={"VALUE": "DURATION"})
    calendar.add("X-PUBLISHED-TTL", icalendar.vDuration(refresh).to_ical().decode())
    calendar.add_component(icalendar.Timezone.from_tzid(zone, first_date=first, last_date=last))
    head = calendar.to_ical()
    end = b"END:VCALENDAR\r\n"
    assert head.endswith(end)
    body = b"".join(vevent_bytes(event, zone) for event in events)
    return head[: -len(end)] + body + end
