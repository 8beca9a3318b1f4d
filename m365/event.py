"""An RDV as an Outlook event, built from the feed's whitelist type.

``FeedEvent`` (feeds/serializer.py) holds only what may leave the server
about an agent's agenda, so no usager's name, email, phone or note can reach
Graph: subject (the motif's name), location, a body with the back-office
link, and times in the organisation's zone.  No attendee: Graph would email
them.  Our UID rides in a single-value extended property, by which
reconciliation finds our events (and only ours) in a mailbox.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from feeds.serializer import FeedEvent

# calserver's own property set: the GUID is fixed forever (events already in
# mailboxes carry it).
PROPERTY_ID = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name calserverUid"
_TRANSACTIONS = uuid.UUID("8a6c3f5e-2b1d-4c0e-9f7a-5d3e2c1b0a99")
GraphEvent = dict[str, Any]


def _when(moment: datetime, zone: str) -> dict[str, str]:
    local = moment.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    return {"dateTime": local.isoformat(timespec="seconds"), "timeZone": zone}


def graph_event(event: FeedEvent, zone: str) -> GraphEvent:
    """The body of a POST or PATCH (without ``transactionId``)."""
    body = f"Voir le RDV : {event.url}" if event.url else ""
    return {
        "subject": event.summary,
        "body": {"contentType": "text", "content": body},
        "start": _when(event.start, zone),
        "end": _when(event.end, zone),
        "location": {"displayName": event.location or ""},
        "showAs": "free" if event.transparent else "busy",
        "attendees": [],
        "singleValueExtendedProperties": [{"id": PROPERTY_ID, "value": event.uid}],
    }


def digest(event: GraphEvent) -> str:
    """What a PATCH would change, as one value: the fields we set, read the
    way Graph gives them back (its dateTime has seven decimals; HTML bodies
    are not compared, only ours is text)."""
    seen = {
        "subject": event.get("subject") or "",
        "body": ((event.get("body") or {}).get("content") or "").strip(),
        "start": _instant(event.get("start")),
        "end": _instant(event.get("end")),
        "location": (event.get("location") or {}).get("displayName") or "",
    }
    return hashlib.sha256(json.dumps(seen, sort_keys=True).encode()).hexdigest()


def _instant(when: dict[str, str] | None) -> list[str]:
    if not when:
        return ["", ""]
    return [when.get("dateTime", "")[:19], when.get("timeZone", "")]


def uid_of(event: GraphEvent) -> str | None:
    for found in event.get("singleValueExtendedProperties") or []:
        if found.get("id") == PROPERTY_ID:
            return found.get("value")
    return None


def transaction_id(item_id: int, mailbox: str, generation: int) -> str:
    """The same for every retry of one creation (Graph then answers the event
    it already made); a new one when the event must be made again."""
    return str(uuid.uuid5(_TRANSACTIONS, f"{item_id}:{mailbox}:{generation}"))
