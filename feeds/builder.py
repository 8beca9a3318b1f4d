"""What an agent's feed holds, from the agenda index and the motif and lieu
tables (never from the text a client wrote into an event).  Events are named
by their opaque public id (UID, and the back-office URL), never by the UID a
client chose, which may hold a name.

RDVs of all the agent's organisations in the window, cancelled ones left out
(Google drops them anyway; other clients would show them struck); with the
agent's setting, absences and plages too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from booking import events
from booking.agenda import DEFAULT_ZONE
from feeds.serializer import FeedEvent, serialize
from storage import calendars, feeds, scheduling


@dataclass(frozen=True)
class FeedSettings:
    refresh: timedelta
    past_days: int
    ahead_days: int


@dataclass(frozen=True)
class Feed:
    """A feed's identity for conditional requests; ``body`` builds it."""

    agent: dict
    organisation_ids: list[int]
    zone: str
    first: date
    last: date
    etag: str
    last_modified: int


def _dt(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def resolve(conn: Connection, agent: dict, settings: FeedSettings, base_url: str) -> Feed:
    """The feed's window and version: a few small queries, no event read."""
    found = scheduling.organisations_of(conn, agent["id"])
    organisations = [org for org, _ in found]
    zone = found[0][1] if found else DEFAULT_ZONE
    today = datetime.now(ZoneInfo(zone)).date()
    first = today - timedelta(days=settings.past_days)
    last = today + timedelta(days=settings.ahead_days)
    version, last_modified = feeds.version(conn, agent, organisations)
    identity = f"{version}|{first}|{last}|{settings.refresh}|{base_url}|{zone}"
    etag = '"' + hashlib.sha256(identity.encode()).hexdigest()[:40] + '"'
    return Feed(agent, organisations, zone, first, last, etag, last_modified)


def body(conn: Connection, feed: Feed, settings: FeedSettings, base_url: str) -> bytes:
    tz = ZoneInfo(feed.zone)
    start = int(datetime.combine(feed.first, time(), tz).timestamp())
    end = int(datetime.combine(feed.last, time(), tz).timestamp())
    agent_id = feed.agent["id"]
    organisations = feed.organisation_ids
    motifs = {m["id"]: m for o in organisations for m in scheduling.motifs_of(conn, o)}
    lieux = {lieu["id"]: lieu for o in organisations for lieu in scheduling.lieux_of(conn, o)}
    found = [
        rdv_event(conn, rdv, motifs, lieux, base_url)
        for rdv in feeds.rdvs(conn, agent_id, start, end)
    ]
    if feed.agent["feed_with_availability"]:
        for kind, public_id, r_start, r_end, modified in feeds.availability(
            conn, agent_id, start, end
        ):
            found.append(
                FeedEvent(
                    uid=f"{public_id}-{r_start}@calserver",
                    start=_dt(r_start),
                    end=_dt(r_end),
                    summary="Plage d'ouverture" if kind == "plage" else "Indisponibilité",
                    last_modified=_dt(modified),
                    transparent=kind == "plage",
                )
            )
    found.sort(key=lambda e: (e.start, e.uid))
    name = f"RDV – {feed.agent['display_name'] or feed.agent['login']}"
    return serialize(
        name, feed.zone, found, refresh=settings.refresh, first=feed.first, last=feed.last
    )


def rdv_event(
    conn: Connection,
    rdv: feeds.FeedRdv,
    motifs: dict[int, dict],
    lieux: dict[int, dict],
    base_url: str,
) -> FeedEvent:
    """What may be said of one RDV outside the server (the feed, Outlook):
    the motif's name, a location by location type, the back-office link."""
    motif = motifs.get(rdv.motif_id or 0)
    location_type = motif["location_type"] if motif else "public_office"
    home = _home(conn, rdv.item_id) if location_type == "home" else (None, None)
    return FeedEvent(
        uid=f"{rdv.public_id}@calserver",
        start=_dt(rdv.starts_at),
        end=_dt(rdv.ends_at),
        summary=motif["name"] if motif else "RDV",
        last_modified=_dt(rdv.modified_at),
        sequence=rdv.sequence,
        location=events.location_text(location_type, lieux.get(rdv.lieu_id or 0), *home) or None,
        url=f"{base_url}/backoffice/rdvs/{rdv.public_id}",
    )


def _home(conn: Connection, item_id: int) -> tuple[str | None, str | None]:
    """Postcode and city of the RDV's first usager (the item's text is read
    only for the usager's id)."""
    text = calendars.item_text(conn, item_id)
    if text is None:
        return None, None
    try:
        usager_ids = events.parse(text, "UTC").usager_ids
    except events.BookingRefused:
        return None, None
    return feeds.home_of(conn, usager_ids[0]) if usager_ids else (None, None)
