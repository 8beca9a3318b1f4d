"""The outbox events of agents' agenda items: RDVs, plages d'ouverture and
absences.

Every path that writes an item of an agent's calendar (a CalDAV PUT or MOVE,
the JSON API, ``calserver import``) goes through the storage plugin's one
write, and every path that deletes one through its one delete; both call
here, in the write's transaction, with what ``booking.agenda.prepare_write``
made of the item.  An item is keyed by its id, which a MOVE keeps: an RDV
moved to another agent's agenda is an update (``agents_changed``), an RDV
moved to an ordinary calendar is destroyed.

What an event says is the item's booking meaning, never its text: ids,
times, status, recurrence and (plages, absences) the title.  An RDV's
SUMMARY is left out, as the API writes the usagers' names there.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import Connection

from booking import changes, events, notifications
from booking.agenda import AgendaWrite, agent_zone
from booking.rules import BookingRefused
from storage import agenda_index, outbox, scheduling

MODEL_OF_KIND = {"rdv": "rdv", "plage": "plage_ouverture", "absence": "absence"}
_CHANGES = {
    "rdv": changes.rdv_changes,
    "plage_ouverture": changes.availability_changes,
    "absence": changes.availability_changes,
}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _state(
    conn: Connection,
    model: str,
    prepared: AgendaWrite,
    before: outbox.Previous,
    writer: str,
    now: datetime,
) -> outbox.State:
    index, parsed = prepared.index, prepared.parsed
    assert index is not None and parsed is not None
    state: outbox.State = {
        "uuid": index.uid,
        "agent_ids": [index.agent_id],
        "starts_at": _iso(parsed.start),
        "ends_at": _iso(parsed.end),
    }
    if model == "rdv":
        old = before.state if before.model == "rdv" else None
        state.update(
            organisation_ids=[index.organisation_id],
            organisation_id=index.organisation_id,
            motif_id=index.motif_id,
            lieu_id=index.lieu_id,
            status=index.status,
            usager_ids=sorted(parsed.usager_ids),
            sequence=index.sequence,
            created_by=old["created_by"] if old else writer,
            cancelled_at=changes.cancelled_at(old, index.status or "unknown", _iso(now)),
        )
        if not parsed.notify_usagers:  # only when off: older states lack the key
            state["notify_usagers"] = False
        if parsed.invitation_id is not None:  # booked with another system's invitation
            state["invitation_id"] = parsed.invitation_id
        return state
    rule = parsed.master.get("RRULE")
    organisations = (
        [index.organisation_id]
        if model == "plage_ouverture" and index.organisation_id is not None
        else [o for o, _ in scheduling.organisations_of(conn, index.agent_id)]
    )
    state.update(
        organisation_ids=organisations,
        title=str(parsed.master.get("SUMMARY", "")),
        recurrence=rule.to_ical().decode() if rule is not None else None,
        lieu_id=index.lieu_id,
        motif_ids=sorted(index.motif_ids) if index.motif_ids is not None else None,
    )
    return state


def item_written(
    conn: Connection,
    item_id: int,
    prepared: AgendaWrite,
    writer: str = "agent",
    now: datetime | None = None,
) -> None:
    """Tell the outbox what the item now is (created or updated), or that it
    is no longer an RDV, plage or absence (destroyed)."""
    index = prepared.index
    model = MODEL_OF_KIND.get(index.kind) if index is not None else None
    before = outbox.previous(conn, "rdv", item_id)
    if model is None:
        if before.state is not None and before.model is not None:
            outbox.record(conn, before, before.model, item_id, None, [], _CHANGES[before.model])
            if before.model == "rdv":
                notifications.schedule(conn, item_id, before.state, None, writer)
        return
    now = now or datetime.now(UTC)
    state = _state(conn, model, prepared, before, writer, now)
    outbox.record(conn, before, model, item_id, state, state["organisation_ids"], _CHANGES[model])
    old_rdv = before.state if before.model == "rdv" else None
    if model == "rdv" or old_rdv is not None:
        new_rdv = state if model == "rdv" else None
        notifications.schedule(conn, item_id, old_rdv, new_rdv, writer, now)


def learn_existing(conn: Connection, now: datetime | None = None) -> int:
    """Teach the outbox every record and agenda item written before it existed
    (a database upgraded from before the outbox), without events, so that an
    initial sync replays them; how many it learnt."""
    now = now or datetime.now(UTC)
    learnt = scheduling.learn_existing_records(conn)
    for item_id, index, text in agenda_index.indexed_items(conn, tuple(MODEL_OF_KIND)):
        model = MODEL_OF_KIND[index.kind]
        before = outbox.previous(conn, model, item_id)
        if before.model is not None:
            continue
        if model == "rdv" and index.organisation_id is None:  # indexed before RDVs had one
            motif = scheduling.motif(conn, index.motif_id) if index.motif_id else None
            if motif is None:
                continue  # an RDV of no organisation: no endpoint may receive it
            index.organisation_id = motif["organisation_id"]
        zone = "UTC" if model == "rdv" else agent_zone(conn, index.agent_id)
        try:
            parsed = events.parse(text, zone)
        except BookingRefused:
            continue
        state = _state(conn, model, AgendaWrite(text, index, parsed), before, "agent", now)
        learnt += outbox.learn(conn, model, item_id, state, state["organisation_ids"])
    return learnt


def items_deleted(conn: Connection, item_ids: Iterable[int]) -> None:
    """Tell the outbox these items are gone (call before deleting them).  A
    CalDAV DELETE of an RDV is ``destroyed``, not a revocation: see the README."""
    for item_id in outbox.told_items(conn, item_ids):
        before = outbox.previous(conn, "rdv", item_id)
        if before.state is not None and before.model is not None:
            outbox.record(conn, before, before.model, item_id, None, [], _CHANGES[before.model])
            if before.model == "rdv":
                notifications.schedule(conn, item_id, before.state, None, "agent")
