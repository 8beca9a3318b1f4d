"""The body of a webhook request, in the shape RDV-SP consumers parse.

``{"data": {...}, "meta": {"model": "Rdv", "event": "created", "webhook_reason":
null, "timestamp": "...", ...}}``.  ``timestamp`` is when the change was
committed (the outbox event's time, as RDV-SP sets it when it makes the
event), so every attempt of one delivery sends the same body; the time of
sending is the ``webhook-timestamp`` header.  ``meta`` also carries what RDV-SP lacks:
``sequence`` (per record: drop an event older than one you have),
``changes`` (what changed: moved, cancelled... see ``booking.changes``) and
``event_id``.

What the outbox event says of the record itself (an RDV's times, status,
ids) is the state of that change; related records (motif, lieu, agents,
usagers, organisation) and a usager's personal fields are read when the
request is built, as RDV-SP reads them.  Times are ISO 8601 in the
organisation's time zone.  A usager's notes are never sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import Connection

from storage import outbox, scheduling

MODEL_NAMES = {
    "rdv": "Rdv",
    "absence": "Absence",
    "plage_ouverture": "PlageOuverture",
    "motif": "Motif",
    "lieu": "Lieu",
    "agent": "Agent",
    "usager": "User",
    "organisation": "Organisation",
}
# The booking writer -> RDV-SP's created_by and created_by_type.
_CREATED_BY = {"agent": "agent", "usager": "user", "prescripteur": "prescripteur"}
DEFAULT_ZONE = "Europe/Paris"
Data = dict[str, Any]


def _local(moment: str | None, zone: str) -> str | None:
    if moment is None:
        return None
    return datetime.fromisoformat(moment).astimezone(ZoneInfo(zone)).isoformat()


def _organisation(record: dict | None) -> Data | None:
    if record is None:
        return None
    return {
        "id": record["id"],
        "name": record["name"],
        "email": record["contact_email"],
        "phone_number": record["contact_phone"],
        "address": record["contact_address"],
        "time_zone": record["time_zone"],
    }


def _lieu(record: dict | None) -> Data | None:
    if record is None:
        return None
    return {
        "id": record["id"],
        "name": record["name"],
        "address": record["address"],
        "phone_number": record["phone"],
        "single_use": False,
        "enabled": bool(record["enabled"]),
    }


def _motif(record: dict | None) -> Data | None:
    if record is None:
        return None
    return {
        "id": record["id"],
        "name": record["name"],
        "color": record["color"],
        "location_type": record["location_type"],
        "bookable_by": record["bookable_by"],
        "default_duration_in_min": record["duration_minutes"],
        "min_public_booking_delay": record["min_delay_minutes"] * 60,
        "max_public_booking_delay": record["max_delay_minutes"] * 60,
        "service_id": record["service_id"],
        "enabled": bool(record["enabled"]),
    }


def _agent(record: dict | None) -> Data | None:
    if record is None:
        return None
    return {
        "id": record["id"],
        "login": record["login"],
        "email": record["email"],
        # RDV-SP has first and last names; calserver keeps one display name.
        "first_name": None,
        "last_name": record["display_name"],
        "display_name": record["display_name"],
    }


def _user(record: dict | None) -> Data | None:
    if record is None:
        return None
    return {
        "id": record["id"],
        "first_name": record["first_name"],
        "last_name": record["last_name"],
        "email": record["email"],
        "phone_number": record["phone"],
        "address": record["address"],
    }


def _invitation(record: dict | None) -> Data | None:
    if record is None:
        return None
    return {"id": record["id"], "reference": record["reference"]}


def _zone(related: Related, organisation_id: int) -> str:
    found = related.get("organisation", organisation_id)
    return found["time_zone"] if found else DEFAULT_ZONE


def _rdv(related: Related, event: outbox.Event) -> Data:
    state = event.data
    organisation = related.get("organisation", event.organisation_id)
    zone = organisation["time_zone"] if organisation else DEFAULT_ZONE
    motif = related.get("motif", state["motif_id"]) if state.get("motif_id") else None
    lieu = related.get("lieu", state["lieu_id"]) if state.get("lieu_id") else None
    users = [u for u in (related.get("usager", i) for i in state["usager_ids"]) if u]
    agents = [a for a in (related.get("agent", i) for i in state["agent_ids"]) if a]
    starts, ends = (
        datetime.fromisoformat(state["starts_at"]),
        datetime.fromisoformat(state["ends_at"]),
    )
    location_type = motif["location_type"] if motif else "public_office"
    if location_type == "public_office":
        address = lieu["address"] if lieu else ""
    elif location_type == "home":
        address = next((u["address"] for u in users if u["address"]), "")
    else:
        address = ""
    created_by = _CREATED_BY.get(state.get("created_by") or "agent", "agent")
    invitation_id = state.get("invitation_id")
    invitation = related.get("invitation", invitation_id) if invitation_id else None
    return {
        "id": event.record_id,
        "uuid": state["uuid"],
        "status": state["status"],
        "starts_at": _local(state["starts_at"], zone),
        "ends_at": _local(state["ends_at"], zone),
        "duration_in_min": int((ends - starts).total_seconds() // 60),
        "address": address,
        "context": None,
        "cancelled_at": _local(state.get("cancelled_at"), zone),
        "collectif": False,
        "max_participants_count": None,
        "name": None,
        "users_count": len(users),
        "created_by": created_by,
        "created_by_type": created_by.capitalize(),
        "created_by_id": None,
        # calserver's own: the invitation (another system's link) it was booked with.
        "invitation": _invitation(invitation),
        "organisation": _organisation(organisation),
        "motif": _motif(motif),
        "lieu": _lieu(lieu),
        "agents": [_agent(a) for a in agents],
        "users": [_user(u) for u in users],
        "participations": [
            {
                "status": state["status"],
                "send_lifecycle_notifications": True,
                "send_reminder_notification": True,
                "created_by": created_by,
                "user": _user(u),
            }
            for u in users
        ],
    }


def _availability(related: Related, event: outbox.Event) -> Data:
    state = event.data
    zone = _zone(related, event.organisation_id)
    starts = datetime.fromisoformat(state["starts_at"]).astimezone(ZoneInfo(zone))
    ends = datetime.fromisoformat(state["ends_at"]).astimezone(ZoneInfo(zone))
    (agent_id,) = state["agent_ids"]
    data: Data = {
        "id": event.record_id,
        "ical_uid": state["uuid"],
        "title": state["title"],
        "first_day": starts.date().isoformat(),
        "start_time": starts.time().isoformat(),
        "end_day": ends.date().isoformat(),
        "end_time": ends.time().isoformat(),
        "starts_at": starts.isoformat(),
        "ends_at": ends.isoformat(),
        "rrule": state["recurrence"],
        "agent": _agent(related.get("agent", agent_id)),
        "organisation": _organisation(related.get("organisation", event.organisation_id)),
    }
    if event.model == "plage_ouverture":
        lieu = related.get("lieu", state["lieu_id"]) if state.get("lieu_id") else None
        motifs = [related.get("motif", i) for i in state.get("motif_ids") or []]
        data["lieu"] = _lieu(lieu)
        data["motifs"] = [_motif(m) for m in motifs if m]
    return data


def _record(related: Related, event: outbox.Event) -> Data:
    state = {k: v for k, v in event.data.items() if k != "organisation_ids"}
    if event.model == "usager":
        return _user(related.get("usager", event.record_id)) or {"id": event.record_id}
    return {
        "organisation": _organisation,
        "lieu": _lieu,
        "motif": _motif,
        "agent": _agent,
    }[event.model](state) or state


def data_of(related: Related, event: outbox.Event) -> Data:
    if event.model == "rdv":
        return _rdv(related, event)
    if event.model in ("absence", "plage_ouverture"):
        return _availability(related, event)
    return _record(related, event)


def _wanted(events: list[outbox.Event]) -> dict[str, set[int]]:
    """The related records the bodies of these events read, by kind."""
    wanted: dict[str, set[int]] = {k: set() for k in scheduling.KINDS}
    for event in events:
        wanted["organisation"].add(event.organisation_id)
        data = event.data
        if event.model == "usager":
            wanted["usager"].add(event.record_id)
        if event.model in ("rdv", "absence", "plage_ouverture"):
            wanted["agent"].update(data.get("agent_ids") or [])
            wanted["usager"].update(data.get("usager_ids") or [])
            wanted["motif"].update(data.get("motif_ids") or [])
            for kind in ("motif", "lieu", "invitation"):
                if data.get(f"{kind}_id"):
                    wanted[kind].add(data[f"{kind}_id"])
    return wanted


class Related:
    """The records a batch of bodies reads, each read once, in one query per
    kind (a worker builds a round's bodies in one read transaction)."""

    def __init__(self, conn: Connection, events: list[outbox.Event]) -> None:
        self._found = {
            kind: scheduling.records_by_id(conn, kind, ids) for kind, ids in _wanted(events).items()
        }

    def get(self, kind: str, record_id: int) -> dict | None:
        return self._found[kind].get(record_id)


@dataclass(frozen=True)
class Unbuilt:
    """An event whose body could not be built (a record in a shape this code
    does not expect: a bug, not a passing fault); ``error`` names the
    exception's class only, never the data."""

    error: str


def bodies(conn: Connection, events: list[outbox.Event]) -> dict[int, bytes | Unbuilt]:
    """The JSON body of the request that tells each event, by event id, as
    bytes (signed as they are); ``Unbuilt`` for one that could not be built,
    so that it does not hold back the others."""
    built: dict[int, bytes | Unbuilt] = {}
    readable = []
    for event in events:  # one whose related records cannot even be named
        try:
            _wanted([event])
            readable.append(event)
        except Exception as e:  # any failure is this one event's alone
            built[event.id] = Unbuilt(type(e).__name__)
    related = Related(conn, readable)
    for event in readable:
        try:
            built[event.id] = _body(related, event)
        except Exception as e:  # any failure is this one event's alone
            built[event.id] = Unbuilt(type(e).__name__)
    return built


def _body(related: Related, event: outbox.Event) -> bytes:
    moment = datetime.fromtimestamp(event.created_ms / 1000, UTC)
    return msgspec.json.encode(
        {
            "data": data_of(related, event),
            "meta": {
                "model": MODEL_NAMES[event.model],
                "event": event.event,
                "webhook_reason": event.reason,
                "timestamp": moment.astimezone(
                    ZoneInfo(_zone(related, event.organisation_id))
                ).isoformat(),
                "sequence": event.sequence,
                "changes": event.changes,
                "event_id": event.id,
            },
        }
    )
