"""What an organisation offers online, read for the public pages.

A motif is offered when it is enabled, open to usagers (``bookable_by =
everyone``) and named by at least one plage d'ouverture still running; a
motif received at a lieu (``public_office``) is offered at the open lieux of
those plages.  A service is offered when one of its motifs is.  Slots come
from the one créneaux search (``booking.agenda.find_creneaux``, public).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection

from booking import agenda
from booking.model import Creneau
from storage import agenda_index, scheduling

MODALITIES = {
    "public_office": "Sur place",
    "phone": "Par téléphone",
    "home": "À domicile",
    "visio": "En visioconférence",
}
NEAREST_WINDOW = timedelta(days=21)


@dataclass(frozen=True)
class Offer:
    organisation: dict
    services: list[dict]
    motifs: list[dict]
    # Motif id -> the open lieux it is offered at (public_office only).
    lieux: dict[int, list[dict]]

    def motif(self, motif_id: int) -> dict | None:
        return next((m for m in self.motifs if m["id"] == motif_id), None)

    def service(self, service_id: int) -> dict | None:
        return next((s for s in self.services if s["id"] == service_id), None)

    def motifs_of(self, service_id: int) -> list[dict]:
        return [m for m in self.motifs if m["service_id"] == service_id]

    def lieu(self, motif_id: int, lieu_id: int | None) -> dict | None:
        return next((lieu for lieu in self.lieux.get(motif_id, []) if lieu["id"] == lieu_id), None)


def offer_of(conn: Connection, organisation: dict, now: datetime) -> Offer:
    pairs = agenda_index.plage_offers(conn, organisation["id"], int(now.timestamp()))
    open_lieux = {
        lieu["id"]: lieu
        for lieu in scheduling.lieux_of(conn, organisation["id"])
        if lieu["enabled"]
    }
    motifs, lieux = [], {}
    for motif in scheduling.motifs_of(conn, organisation["id"]):
        if not motif["enabled"] or motif["bookable_by"] != "everyone":
            continue
        named = [lieu for m, lieu in pairs if m == motif["id"]]
        if not named:
            continue
        if motif["location_type"] == "public_office":
            at = sorted({i for i in named if i in open_lieux})
            if not at:
                continue
            lieux[motif["id"]] = [open_lieux[i] for i in at]
        motifs.append(motif)
    offered_services = {m["service_id"] for m in motifs}
    services = [
        s
        for s in scheduling.organisation_services(conn, organisation["id"])
        if s["id"] in offered_services
    ]
    return Offer(organisation, services, motifs, lieux)


def _query(motif: dict, lieu_id: int | None, start: datetime, end: datetime) -> agenda.SlotQuery:
    return agenda.SlotQuery(motif["id"], start, end, public=True, lieu_id=lieu_id)


def horizon(motif: dict, now: datetime) -> datetime:
    """The last moment a usager may book this motif for."""
    return now + timedelta(minutes=motif["max_delay_minutes"])


def week(
    conn: Connection, motif: dict, lieu_id: int | None, start: datetime, now: datetime
) -> list[Creneau]:
    """The slots of the seven days from ``start`` (none past the motif's horizon)."""
    end = min(start + timedelta(days=7), horizon(motif, now))
    if end <= start:
        return []
    return agenda.find_creneaux(conn, _query(motif, lieu_id, start, end), now)


def next_slot(
    conn: Connection, motif: dict, lieu_id: int | None, now: datetime, start: datetime | None = None
) -> Creneau | None:
    """The first slot from ``start`` (now by default), up to the motif's horizon."""
    first = max(start or now, now)
    last = horizon(motif, now)
    if last <= first:
        return None
    return agenda.next_availability(conn, _query(motif, lieu_id, first, last), now)


def nearest(
    conn: Connection,
    motif: dict,
    lieu_id: int | None,
    wanted: datetime,
    now: datetime,
    count: int = 6,
) -> list[Creneau]:
    """The free slots closest to ``wanted`` (before or after), for a usager
    whose slot was taken meanwhile."""
    wanted = min(max(wanted, now), horizon(motif, now))  # a slot typed into a URL
    start = max(now, wanted - NEAREST_WINDOW)
    end = min(wanted + NEAREST_WINDOW, horizon(motif, now))
    if end <= start:
        return []
    found = agenda.find_creneaux(conn, _query(motif, lieu_id, start, end), now)
    found.sort(key=lambda c: abs((c.start - wanted).total_seconds()))
    return sorted(found[:count], key=lambda c: c.start)


def utc_now() -> datetime:
    return datetime.now(UTC)


def bookable_time(motif: dict, start: datetime, now: datetime) -> bool:
    """Whether ``start`` lies where a public search may look (a slot typed
    into a URL may lie anywhere)."""
    return now <= start <= horizon(motif, now)


def offered_at(
    conn: Connection, motif: dict, lieu_id: int | None, start: datetime, now: datetime
) -> bool:
    """Whether the public search offers this very slot now."""
    if not bookable_time(motif, start, now):
        return False
    end = start + timedelta(minutes=motif["duration_minutes"])
    return agenda.creneau_at(conn, _query(motif, lieu_id, start, end), now) is not None
