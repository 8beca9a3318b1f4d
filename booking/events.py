"""The iCalendar face of plages, absences and RDVs.

An agent's agendas are plain VEVENTs; what the booking engine needs beyond
standard properties travels in ``X-CALSERVER-`` properties (motif, lieu,
status, organisation, usagers), which calendar clients keep untouched when
they move or stretch an event.  This module reads those VEVENTs (from any
client) and writes them (for the API), so that both paths produce the same
objects.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar

from booking.model import CANCELLED_STATUSES, RDV_STATUSES
from booking.recurrence import first_matching, span
from booking.rules import BookingRefused

PRODID = "-//calserver//calserver//FR"
X_MOTIF = "X-CALSERVER-MOTIF"
X_LIEU = "X-CALSERVER-LIEU"
X_STATUS = "X-CALSERVER-STATUS"
X_ORGANISATION = "X-CALSERVER-ORGANISATION"
X_USAGER = "X-CALSERVER-USAGER"
# FALSE: the usagers of this RDV are sent no notification (the booking agent's
# choice); absent or anything else: they are.
X_NOTIFY = "X-CALSERVER-NOTIFY-USAGERS"
# The invitation (another system's link) an RDV was booked with.
X_INVITATION = "X-CALSERVER-INVITATION"


@dataclass
class ParsedEvent:
    uid: str
    calendar: icalendar.Calendar
    master: icalendar.Event
    start: datetime  # UTC, of the first (master) occurrence
    end: datetime
    recurring: bool
    opaque: bool
    cancelled: bool  # STATUS:CANCELLED
    motif_ids: list[int]
    lieu_id: int | None
    x_status: str | None
    sequence: int
    usager_ids: list[int]
    notify_usagers: bool = True
    invitation_id: int | None = None

    @property
    def rdv_status(self) -> str:
        """An RDV's status; a client cancelling the event (STATUS:CANCELLED)
        revokes it."""
        status = self.x_status or "unknown"
        if self.cancelled and status not in CANCELLED_STATUSES:
            return "revoked"
        return status


def _ints(values: object, name: str) -> list[int]:
    raw = values if isinstance(values, list) else [values]
    found: list[int] = []
    for value in raw:
        for part in str(value).split(","):
            part = part.strip()
            if not part:
                continue
            if not part.isdigit():
                raise BookingRefused("invalid-event", f"{name} must hold numeric ids, not {part!r}")
            found.append(int(part))
    return found


def parse(text: str, zone: str) -> ParsedEvent:
    """Read the one VEVENT series of an iCalendar object (floating times are
    in ``zone``); BookingRefused("invalid-event") for anything unreadable."""
    try:
        return _parse(text, zone)
    except BookingRefused:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as e:
        raise BookingRefused("invalid-event", f"unreadable event: {type(e).__name__}") from None


def _parse(text: str, zone: str) -> ParsedEvent:
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except ValueError as e:
        raise BookingRefused("invalid-event", f"unreadable calendar data: {e}") from None
    events = [c for c in calendar.walk("VEVENT")]
    masters = [e for e in events if "RECURRENCE-ID" not in e]
    if len(masters) != 1:
        raise BookingRefused("invalid-event", "an agenda entry holds exactly one VEVENT series")
    master = masters[0]
    if "DTSTART" not in master:
        raise BookingRefused("invalid-event", "the event has no start (DTSTART)")
    start, end = span(master, ZoneInfo(zone))
    lieu = _ints(master.get(X_LIEU, []), X_LIEU)
    invitation = _ints(master.get(X_INVITATION, []), X_INVITATION)
    status = str(master.get(X_STATUS, "")).strip().lower() or None
    return ParsedEvent(
        uid=str(master.get("UID", "")),
        calendar=calendar,
        master=master,
        start=start,
        end=end,
        recurring=any(k in master for k in ("RRULE", "RDATE")),
        opaque=str(master.get("TRANSP", "OPAQUE")).upper() != "TRANSPARENT",
        cancelled=str(master.get("STATUS", "")).upper() == "CANCELLED",
        motif_ids=_ints(master.get(X_MOTIF, []), X_MOTIF),
        lieu_id=lieu[0] if lieu else None,
        x_status=status,
        sequence=int(master.get("SEQUENCE", 0)),
        usager_ids=_ints(master.get(X_USAGER, []), X_USAGER),
        notify_usagers=str(master.get(X_NOTIFY, "TRUE")).strip().upper() != "FALSE",
        invitation_id=invitation[0] if invitation else None,
    )


def stamp_rdv(parsed: ParsedEvent, sequence: int, now: datetime) -> str:
    """The RDV's text with SEQUENCE, LAST-MODIFIED, DTSTAMP and STATUS kept
    true (RFC 5545: STATUS CANCELLED for a cancelled RDV, which stays in the
    agenda)."""
    master = parsed.master
    status = parsed.rdv_status
    for name in ("SEQUENCE", "LAST-MODIFIED", "DTSTAMP", "STATUS", X_STATUS):
        master.pop(name, None)
    master.add("SEQUENCE", sequence)
    master.add("LAST-MODIFIED", now.astimezone(UTC))
    master.add("DTSTAMP", now.astimezone(UTC))
    master.add("STATUS", "CANCELLED" if status in CANCELLED_STATUSES else "CONFIRMED")
    master.add(X_STATUS, status)
    return parsed.calendar.to_ical().decode("utf-8")


def rescheduled(
    parsed: ParsedEvent,
    zone: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    lieu: tuple[int | None, str | None] | None = None,
    status: str | None = None,
) -> str:
    """The event's text with a new time, lieu (id, LOCATION text) or status;
    ``stamp_rdv`` then keeps SEQUENCE and LAST-MODIFIED true."""
    master = parsed.master
    tz = ZoneInfo(zone)
    if start is not None and end is not None:
        for name in ("DTSTART", "DTEND", "DURATION"):
            master.pop(name, None)
        master.add("DTSTART", start.astimezone(tz))
        master.add("DTEND", end.astimezone(tz))
    if lieu is not None:
        master.pop(X_LIEU, None)
        master.pop("LOCATION", None)
        lieu_id, location = lieu
        if lieu_id is not None:
            master.add(X_LIEU, str(lieu_id))
        if location:
            master.add("LOCATION", location)
    if status is not None:
        master.pop(X_STATUS, None)
        master.pop("STATUS", None)
        master.add(X_STATUS, status)
        master.add("STATUS", "CANCELLED" if status in CANCELLED_STATUSES else "CONFIRMED")
    parsed.calendar.add_missing_timezones()
    return parsed.calendar.to_ical().decode("utf-8")


def _calendar() -> icalendar.Calendar:
    calendar = icalendar.Calendar()
    calendar.add("PRODID", PRODID)
    calendar.add("VERSION", "2.0")
    return calendar


@dataclass(frozen=True)
class Attendee:
    usager_id: int
    name: str
    email: str | None


def build_event(
    *,
    zone: str,
    start: datetime,
    end: datetime,
    summary: str,
    uid: str | None = None,
    rrule: dict[str, object] | None = None,
    exdates: Sequence[datetime] = (),
    transparent: bool = False,
    motif_ids: Sequence[int] = (),
    lieu_id: int | None = None,
    location: str | None = None,
    organisation_id: int | None = None,
    status: str | None = None,
    attendees: Sequence[Attendee] = (),
    notify_usagers: bool = True,
    invitation_id: int | None = None,
    now: datetime | None = None,
) -> str:
    """One VEVENT in its own VCALENDAR, times in the organisation's zone
    (recurrence is computed in local time, so a 09:00 plage stays at 09:00).
    A recurring event starts on the first day of its pattern from ``start``."""
    if status is not None and status not in RDV_STATUSES:
        raise BookingRefused("invalid-status", f"unknown status {status!r}")
    tz = ZoneInfo(zone)
    now = now or datetime.now(UTC)
    if rrule:
        local_start = start.astimezone(tz)
        aligned = first_matching(local_start, rrule)
        shift = aligned.date() - local_start.date()
        local_end = end.astimezone(tz)
        start, end = aligned, datetime.combine(local_end.date() + shift, local_end.time(), tz)
    event = icalendar.Event()
    event.add("UID", uid or f"{uuid.uuid4()}@calserver")
    event.add("DTSTAMP", now.astimezone(UTC))
    event.add("LAST-MODIFIED", now.astimezone(UTC))
    event.add("SEQUENCE", 0)
    event.add("DTSTART", start.astimezone(tz))
    event.add("DTEND", end.astimezone(tz))
    event.add("SUMMARY", summary)
    if rrule:
        event.add("RRULE", rrule)
    for exdate in exdates:
        event.add("EXDATE", exdate.astimezone(tz))
    if transparent:
        event.add("TRANSP", "TRANSPARENT")
    if motif_ids:
        event.add(X_MOTIF, ",".join(str(m) for m in motif_ids))
    if lieu_id is not None:
        event.add(X_LIEU, str(lieu_id))
    if location:
        event.add("LOCATION", location)
    if organisation_id is not None:
        event.add(X_ORGANISATION, str(organisation_id))
    if status is not None:
        event.add("STATUS", "CANCELLED" if status in CANCELLED_STATUSES else "CONFIRMED")
        event.add(X_STATUS, status)
    for attendee in attendees:
        params = {"CN": attendee.name, "ROLE": "REQ-PARTICIPANT", "PARTSTAT": "ACCEPTED"}
        target = (
            f"mailto:{attendee.email}"
            if attendee.email
            else f"urn:calserver:usager:{attendee.usager_id}"
        )
        event.add("ATTENDEE", target, parameters=params)
        event.add(X_USAGER, str(attendee.usager_id))
    if not notify_usagers:
        event.add(X_NOTIFY, "FALSE")
    if invitation_id is not None:
        event.add(X_INVITATION, str(invitation_id))
    calendar = _calendar()
    calendar.add_component(event)
    calendar.add_missing_timezones()
    return calendar.to_ical().decode("utf-8")


def build_rdv(
    *,
    zone: str,
    uid: str,
    start: datetime,
    motif: dict,
    lieu: dict | None,
    organisation_id: int,
    usagers: Sequence[dict],
    status: str = "unknown",
    notify_usagers: bool = True,
    invitation_id: int | None = None,
) -> str:
    """An RDV as every path writes it (the API, the public page): the motif's
    duration, its usagers as ATTENDEEs, SUMMARY "motif : names", LOCATION
    from the modality."""
    attendees = [
        Attendee(u["id"], f"{u['first_name']} {u['last_name']}", u["email"]) for u in usagers
    ]
    home = (usagers[0]["postcode"], usagers[0]["city"]) if usagers else (None, None)
    names = ", ".join(a.name for a in attendees)
    return build_event(
        zone=zone,
        uid=uid,
        start=start,
        end=start + timedelta(minutes=motif["duration_minutes"]),
        summary=f"{motif['name']} : {names}" if names else motif["name"],
        motif_ids=[motif["id"]],
        lieu_id=lieu["id"] if lieu else None,
        location=location_text(motif["location_type"], lieu, *home),
        organisation_id=organisation_id,
        status=status,
        attendees=attendees,
        notify_usagers=notify_usagers,
        invitation_id=invitation_id,
    )


def location_text(
    location_type: str,
    lieu: dict | None,
    home_postcode: str | None = None,
    home_city: str | None = None,
) -> str:
    """LOCATION of an RDV: the lieu's name and address at a public office;
    for a visit at home only the usager's structured postcode and city, never
    the free-text address (the feed and Outlook carry this text, and an
    address line holds floors, door codes, names on the bell)."""
    if location_type == "phone":
        return "Par téléphone"
    if location_type == "visio":
        return "Visioconférence"
    if location_type == "home":
        place = " ".join(p.strip() for p in (home_postcode, home_city) if p and p.strip())
        return f"À domicile ({place})" if place else "À domicile"
    if lieu is None:
        return ""
    return f"{lieu['name']}, {lieu['address']}"
