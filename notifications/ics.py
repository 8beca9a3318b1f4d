"""The calendar object a notification email carries.

One VEVENT with the UID of the RDV's feed event (``<public id>@calserver``,
stable across every change and move) and the SEQUENCE of the agenda, so the
copy a mail client keeps is updated in place, never duplicated.  Usagers get
``METHOD:PUBLISH`` (an event to add) or ``CANCEL``; agents ``REQUEST`` or
``CANCEL`` with themselves as ATTENDEE, which Outlook and Thunderbird apply to
the event they already hold.  The text carries no usager data beyond what
the recipient already knows (the usager sees their own RDV; an agent gets the
motif and the place, as in the feed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import icalendar

PRODID = "-//calserver//notifications//FR"


@dataclass(frozen=True)
class IcsEvent:
    uid: str
    sequence: int
    starts_at: datetime
    ends_at: datetime
    summary: str
    location: str
    description: str
    cancelled: bool
    organizer: str  # an email address
    attendee: tuple[str, str] | None = None  # (name, email) of the agent


def method_for(audience: str, cancelled: bool) -> str:
    if cancelled:
        return "CANCEL"
    return "REQUEST" if audience == "agent" else "PUBLISH"


def build(event: IcsEvent, method: str, now: datetime | None = None) -> bytes:
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", method)
    vevent = icalendar.Event()
    vevent.add("uid", event.uid)
    vevent.add("dtstamp", (now or datetime.now(UTC)).astimezone(UTC))
    vevent.add("dtstart", event.starts_at.astimezone(UTC))
    vevent.add("dtend", event.ends_at.astimezone(UTC))
    vevent.add("sequence", event.sequence)
    vevent.add("summary", event.summary)
    vevent.add("location", event.location)
    vevent.add("description", event.description)
    vevent.add("status", "CANCELLED" if event.cancelled else "CONFIRMED")
    vevent.add("organizer", f"mailto:{event.organizer}")
    if event.attendee is not None:
        name, address = event.attendee
        attendee = icalendar.vCalAddress(f"mailto:{address}")
        attendee.params["CN"] = name or address
        attendee.params["ROLE"] = "REQ-PARTICIPANT"
        attendee.params["PARTSTAT"] = "ACCEPTED"
        vevent.add("attendee", attendee)
    calendar.add_component(vevent)
    return calendar.to_ical()
