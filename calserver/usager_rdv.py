"""A usager's own RDV, reached through the "Infos et annulation" link of their
notifications: what the self-service page shows and the two changes it
makes, each in the caller's write transaction.

The link (``/r/<item id>/<token>``) names the stored item; its token opens
the RDV to one usager while the RDV is not over (``storage.notifications``:
each notification renews it).  Cancelling and moving rewrite the agent's
RDV event and store it through ``plugins.agenda_writer`` as writer
``usager``: the very path of a CalDAV PUT and of the API, so the one booking
check (``booking.agenda.prepare_write``) applies the usager's rules (the
motif's permissions, the 4-hour limit, public delays, ``bookable_by``, the
slot grid) under the agent's lock, and the change reaches the CalDAV agenda,
the outbox and the notifications in the same transaction.

A move offers the motif's public slots at the RDV's lieu with every agent of
its service (the booking journey's créneaux step): it stays with its agent
when that agent is free at the new time, else it goes to another agent free
then, the item moved to that agent's agenda (one item, its id and so the
usager's link kept; the old agent is told of a cancellation, the new one of
an RDV, per their preferences).

Nothing here returns another usager's data: a usager no longer on the RDV
gets None, as an unknown link does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection

from booking import events
from booking.agenda import (
    SlotQuery,
    creneau_at,
    find_creneaux,
    next_availability,
    rdv_agenda,
)
from booking.model import Creneau
from booking.rules import (
    USAGER_CANCELLED,
    BookingRefused,
    UsagerChange,
    check_usager_change,
)
from booking.selfservice import letters_match
from plugins import agenda_writer
from storage import agenda_index, notifications, scheduling

WRITER = "usager"
# Refusals that say the RDV's own agent cannot take the new time (busy,
# absent, no plage then), while another agent of the service might.
_NOT_THIS_AGENT = frozenset(
    {"slot-unavailable", "agent-busy", "agent-unavailable", "outside-plage"}
)
NOT_ONLINE = "Ce rendez-vous ne peut pas être déplacé en ligne : contactez le service."


@dataclass(frozen=True)
class UsagerRdv:
    """What the usager's page says of their RDV (no other usager's data)."""

    item_id: int
    usager_id: int
    agent_id: int
    motif_id: int
    lieu_id: int | None
    motif: str
    location_type: str
    starts_at: datetime
    ends_at: datetime
    zone: str
    status: str
    lieu_name: str | None
    lieu_address: str | None
    instructions: str
    organisation: dict[str, str | None]
    # Why the usager may not cancel / move it now, in their words (None: they
    # may; the write is checked again).
    cancel_refusal: str | None
    move_refusal: str | None
    horizon: datetime  # the latest start the motif's public delays allow

    @property
    def can_cancel(self) -> bool:
        return self.cancel_refusal is None

    @property
    def can_move(self) -> bool:
        return self.move_refusal is None

    @property
    def refusal(self) -> str | None:
        """Why neither, when one reason says it."""
        return self.cancel_refusal if self.cancel_refusal == self.move_refusal else None


def link_usager(conn: Connection, item_id: int, token: str, now: datetime) -> int | None:
    """The usager whose link this is, while it is valid (None otherwise)."""
    return notifications.link_usager(conn, item_id, token, int(now.timestamp() * 1000))


def letters_right(conn: Connection, usager_id: int, typed: str) -> bool:
    usager = scheduling.usager(conn, usager_id)
    return usager is not None and letters_match(usager["last_name"], typed)


def _allowed(change: UsagerChange, now: datetime) -> str | None:
    try:
        check_usager_change(change, now)
    except BookingRefused as refused:
        return refused.message
    return None


def usager_rdv(conn: Connection, item_id: int, usager_id: int, now: datetime) -> UsagerRdv | None:
    """The RDV as its usager sees it; None when it is not (or no longer) theirs."""
    placed = agenda_index.placed_rdv(conn, item_id=item_id)
    if placed is None or placed.event.motif_id is None:
        return None
    parsed = events.parse(placed.text, "UTC")
    if usager_id not in parsed.usager_ids:
        return None
    motif = scheduling.motif(conn, placed.event.motif_id)
    organisation = (
        scheduling.organisation(conn, motif["organisation_id"]) if motif is not None else None
    )
    if motif is None or organisation is None:
        return None
    lieu = scheduling.lieu(conn, parsed.lieu_id) if parsed.lieu_id is not None else None
    status = parsed.rdv_status
    cancel = UsagerChange(
        starts_at=parsed.start,
        status=status,
        new_status=USAGER_CANCELLED,
        moved=False,
        can_cancel=bool(motif["usager_can_cancel"]),
        can_move=bool(motif["usager_can_move"]),
    )
    move = UsagerChange(
        parsed.start, status, status, True, cancel.can_cancel, cancel.can_move
    )  # fmt: skip
    move_refusal = _allowed(move, now)
    if move_refusal is None and not (motif["bookable_by"] == "everyone" and motif["enabled"]):
        move_refusal = NOT_ONLINE
    return UsagerRdv(
        item_id=item_id,
        usager_id=usager_id,
        agent_id=placed.event.agent_id,
        motif_id=motif["id"],
        lieu_id=parsed.lieu_id,
        motif=motif["name"],
        location_type=motif["location_type"],
        starts_at=parsed.start,
        ends_at=parsed.end,
        zone=organisation["time_zone"],
        status=status,
        lieu_name=lieu["name"] if lieu else None,
        lieu_address=lieu["address"] if lieu else None,
        instructions=motif["instructions_after"] or "",
        organisation={
            "name": organisation["name"],
            "phone": organisation.get("contact_phone"),
            "email": organisation.get("contact_email"),
            "address": organisation.get("contact_address"),
        },
        cancel_refusal=_allowed(cancel, now),
        move_refusal=move_refusal,
        horizon=now + timedelta(minutes=motif["max_delay_minutes"]),
    )


def _rewrite(
    conn: Connection,
    item_id: int,
    usager_id: int,
    now: datetime,
    *,
    start: datetime | None = None,
    status: str | None = None,
    agent_id: int | None = None,
) -> UsagerRdv:
    """Store the usager's change through the agenda writer (writer
    ``usager``), in the agenda of ``agent_id`` when it is another agent's;
    BookingRefused when a rule says no (nothing written), LookupError when
    the RDV is not theirs."""
    rdv = usager_rdv(conn, item_id, usager_id, now)
    placed = agenda_index.placed_rdv(conn, item_id=item_id)
    if rdv is None or placed is None:
        raise LookupError(item_id)
    parsed = events.parse(placed.text, rdv.zone)
    end = start + (rdv.ends_at - rdv.starts_at) if start is not None else None
    text = events.rescheduled(parsed, rdv.zone, start=start, end=end, status=status)
    if agent_id is None or agent_id == rdv.agent_id:
        agenda_writer.put_event(conn, placed.collection_path, placed.href, text, writer=WRITER)
    else:
        agent = scheduling.agent(conn, agent_id)
        if agent is None:
            raise LookupError(agent_id)
        target = rdv_agenda(agent["login"])
        agenda_writer.move_event(conn, placed.collection_path, placed.href, target, text, WRITER)
    changed = usager_rdv(conn, item_id, usager_id, now)
    assert changed is not None  # the usager stays on the RDV they changed
    return changed


def cancel(conn: Connection, item_id: int, usager_id: int, now: datetime) -> UsagerRdv:
    """Cancel as the usager: status ``excused``."""
    return _rewrite(conn, item_id, usager_id, now, status=USAGER_CANCELLED)


def move_candidates(
    conn: Connection, item_id: int, usager_id: int, start: datetime, now: datetime
) -> list[int]:
    """The agents who may take the RDV at ``start``, in the order ``move``
    tries them: its own agent, then the others the search finds free for
    that very slot.  A read: the search runs before the write transaction,
    never under its locks."""
    rdv = usager_rdv(conn, item_id, usager_id, now)
    if rdv is None:
        raise LookupError(item_id)
    end = start + (rdv.ends_at - rdv.starts_at)
    slot = creneau_at(conn, _query(rdv, start, end), now)
    free = (slot.agent_ids or (slot.agent_id,)) if slot is not None else ()
    return [rdv.agent_id, *(a for a in free if a != rdv.agent_id)]


def move(
    conn: Connection,
    item_id: int,
    usager_id: int,
    start: datetime,
    now: datetime,
    agent_ids: Sequence[int],
) -> UsagerRdv:
    """Move to another start (same motif and lieu) with the first of
    ``agent_ids`` (``move_candidates``) whose agenda takes it; the first
    refusal when none does.  Their agendas are locked together first, in one
    order for every writer, so two usagers moving RDVs between the same
    agents queue instead of deadlocking."""
    agents = [scheduling.agent(conn, agent_id) for agent_id in agent_ids]
    paths = [rdv_agenda(agent["login"]) for agent in agents if agent is not None]
    agenda_writer.lock_agendas(conn, paths, agent_ids)
    first: BookingRefused | None = None
    for agent_id in agent_ids:
        try:
            return _rewrite(conn, item_id, usager_id, now, start=start, agent_id=agent_id)
        except BookingRefused as refused:
            if refused.code not in _NOT_THIS_AGENT:
                raise
            first = first or refused
    if first is None:
        raise LookupError(item_id)
    raise first


def _query(rdv: UsagerRdv, start: datetime, end: datetime) -> SlotQuery:
    """The slots the RDV may move to: its motif's public slots at its lieu,
    with any agent of the motif's service."""
    return SlotQuery(rdv.motif_id, start, end, public=True, lieu_id=rdv.lieu_id)


def creneaux(
    conn: Connection, rdv: UsagerRdv, start: datetime, end: datetime, now: datetime
) -> list[Creneau]:
    """The slots in [start, end) the RDV may move to (none past its horizon,
    nor at its own start, which another agent may offer)."""
    end = min(end, rdv.horizon)
    if start >= end:
        return []
    return [
        c for c in find_creneaux(conn, _query(rdv, start, end), now) if c.start != rdv.starts_at
    ]


def next_creneau(
    conn: Connection, rdv: UsagerRdv, start: datetime, now: datetime
) -> Creneau | None:
    """The first slot from ``start`` the RDV may move to."""
    start = max(start, now)
    while start < rdv.horizon:
        found = next_availability(conn, _query(rdv, start, rdv.horizon), now)
        if found is None or found.start != rdv.starts_at:
            return found
        start = found.start + timedelta(minutes=1)
    return None
