"""The public page's one write: an RDV for a usager, in the agent's CalDAV
agenda, through the very path of a CalDAV PUT and of the API
(``plugins.agenda_writer.put_event`` with writer "usager": the one booking
check, ``booking.agenda.prepare_write``, with public delays, ``bookable_by``
and the whole-plage grid, under the per-agent lock).

The slot's agent is the one the créneaux search gives (the first-registered
plage's); when a racing booking took it between the search and the lock, the
search runs again and the next free agent of the same slot is tried, so a
slot several agents offer is lost only when all of them are taken.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection

from booking import agenda, events
from booking.rules import BookingRefused, Why
from calserver.web.booking import offer
from plugins import agenda_writer
from storage import scheduling

WRITER = "usager"
# Refusals that mean "someone got there first" for a slot the search offered:
# the slot itself, or the grid it stood on, changed under the usager.
_LOST = frozenset({"slot-unavailable", "booking-delay", "agent-busy", "agent-unavailable"})
_TRIES = 3


class SlotTaken(Exception):
    """The slot is no longer offered: the caller proposes the nearest ones."""


@dataclass(frozen=True)
class Identity:
    first_name: str
    last_name: str
    email: str
    phone: str | None
    notify_by_email: bool
    notify_by_sms: bool


@dataclass(frozen=True)
class Booked:
    agent_id: int
    uid: str
    usager_id: int


def usager_for(conn: Connection, organisation_id: int, identity: Identity) -> dict:
    """The organisation's usager with this email (checked by the caller),
    made when there is none.  An existing record keeps its names (the
    organisation's agents may have corrected them); the usager's own choice
    of notifications is taken, and a phone where it had none."""
    found, made = scheduling.usager_by_email(
        conn,
        {
            "organisation_id": organisation_id,
            "first_name": identity.first_name,
            "last_name": identity.last_name,
            "email": identity.email,
            "phone": identity.phone,
            "notify_by_email": identity.notify_by_email,
            "notify_by_sms": identity.notify_by_sms,
        },
    )
    if made:
        return found
    changes: dict = {
        "notify_by_email": identity.notify_by_email,
        "notify_by_sms": identity.notify_by_sms,
    }
    if identity.phone and not found["phone"]:
        changes["phone"] = identity.phone
    updated = scheduling.update_usager(conn, found["id"], changes)
    assert updated is not None
    return updated


def slot_agent(
    conn: Connection, motif: dict, lieu: dict | None, start: datetime, now: datetime
) -> int:
    """The agent the public search gives for this slot, or SlotTaken."""
    if not offer.bookable_time(motif, start, now):
        raise SlotTaken()
    lieu_id = lieu["id"] if lieu else None
    end = start + timedelta(minutes=motif["duration_minutes"])
    query = agenda.SlotQuery(motif["id"], start, end, public=True, lieu_id=lieu_id)
    slot = agenda.creneau_at(conn, query, now)
    if slot is None:
        raise SlotTaken()
    return slot.agent_id


def book(
    conn: Connection,
    organisation: dict,
    motif: dict,
    lieu: dict | None,
    start: datetime,
    usager: dict,
    now: datetime,
    invitation_id: int | None = None,
    agent_id: int | None = None,
) -> Booked:
    """Write the RDV, or raise SlotTaken (nothing written).

    ``agent_id``, when given, is the slot's agent found by a search the caller
    made before its write transaction (``slot_agent``): it is tried first, so
    the database's write lock is not held through a search.  The booking check
    decides all the same; a lost slot searches again here."""
    if not offer.bookable_time(motif, start, now):
        raise SlotTaken()
    for _ in range(_TRIES):
        if agent_id is None:
            agent_id = slot_agent(conn, motif, lieu, start, now)
        agent = scheduling.agent(conn, agent_id)
        if agent is None:  # gone since the caller's search
            agent_id = None
            continue
        uid = f"{uuid.uuid4()}@calserver"
        text = events.build_rdv(
            zone=organisation["time_zone"],
            uid=uid,
            start=start,
            motif=motif,
            lieu=lieu,
            organisation_id=organisation["id"],
            usagers=[usager],
            invitation_id=invitation_id,
        )
        try:
            agenda_writer.put_event(
                conn, agenda.rdv_agenda(agent["login"]), f"{uid}.ics", text, WRITER
            )
        except BookingRefused as e:
            if e.why is Why.TAKEN or e.code in _LOST:
                agent_id = None
                continue
            raise
        return Booked(agent["id"], uid, usager["id"])
    raise SlotTaken()
