"""The booking rules: whether an RDV may be written, whatever path it comes by.

The caller (plugins' CalDAV check, the JSON API, the public page: all through
``booking.agenda``) gathers what the rules read for the RDV's time and agents;
this module decides on plain data and says why in words an agent understands.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from booking.creneaux import Search, find_creneaux
from booking.model import (
    CANCELLED_STATUSES,
    RDV_STATUSES,
    Busy,
    Interval,
    Motif,
    Organisation,
    PlageOccurrence,
    ts,
)


class Why(enum.Enum):
    """What kind of refusal: each protocol's boundary picks its answer from it
    (the API's status codes live in calserver/api, not here)."""

    RULE = "the request breaks a rule"
    MISSING = "what the request names does not exist"
    TAKEN = "someone else got there first"
    OVERLOADED = "the server cannot afford the work asked now"
    FORBIDDEN = "the person asking may see this but not do it"


class BookingRefused(Exception):
    """A write the rules refuse.  ``code`` names the precondition (CalDAV) and
    the error (API); ``message`` is for the person who tried."""

    def __init__(self, code: str, message: str, why: Why = Why.RULE) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.why = why


@dataclass(frozen=True)
class RdvWrite:
    uid: str
    agent_ids: tuple[int, ...]
    start: datetime
    end: datetime
    motif_id: int | None
    lieu_id: int | None
    status: str = "unknown"
    writer: str = "agent"  # agent / prescripteur / usager


@dataclass(frozen=True)
class RdvContext:
    """What the rules read, for the RDV's agents around its time.  ``busy``
    excludes the RDV itself (same UID)."""

    organisation: Organisation
    motif: Motif | None
    plages: list[PlageOccurrence]
    busy: list[Busy]
    holidays: list[Interval]
    now: datetime


_BOOKABLE = {
    "agent": ("agents", "agents_and_prescripteurs", "everyone"),
    "prescripteur": ("agents_and_prescripteurs", "everyone"),
    "usager": ("everyone",),
}


def _local(moment: datetime, organisation: Organisation) -> str:
    return moment.astimezone(ZoneInfo(organisation.time_zone)).strftime("%d/%m/%Y %H:%M")


def check_rdv(rdv: RdvWrite, ctx: RdvContext) -> None:
    """Raise BookingRefused unless the RDV may be written as it is."""
    if rdv.status not in RDV_STATUSES:
        raise BookingRefused(
            "invalid-status", f"unknown status {rdv.status!r}; use one of {', '.join(RDV_STATUSES)}"
        )
    if rdv.status in CANCELLED_STATUSES:
        return  # a cancelled RDV holds no time
    if rdv.end <= rdv.start:
        raise BookingRefused("invalid-time", "the RDV must end after it starts")
    motif = ctx.motif
    if motif is None:
        raise BookingRefused("unknown-motif", "this RDV has no known motif")
    if rdv.writer not in _BOOKABLE or motif.bookable_by not in _BOOKABLE[rdv.writer]:
        raise BookingRefused(
            "motif-not-bookable", f"the motif « {motif.name} » cannot be booked this way"
        )
    check_duration(rdv, motif)
    if motif.location_type == "public_office" and rdv.lieu_id is None:
        raise BookingRefused("lieu-required", f"« {motif.name} » takes place at a lieu")
    if not rdv.agent_ids:
        raise BookingRefused("agent-required", "an RDV needs at least one agent")
    slot = Interval(rdv.start, rdv.end)
    slot_start, slot_end = ts(rdv.start), ts(rdv.end)
    when = _local(rdv.start, ctx.organisation)
    for agent in rdv.agent_ids:
        offering = [
            p
            for p in ctx.plages
            if p.agent_id == agent and p.offers(motif, rdv.lieu_id, rdv.writer != "agent")
        ]
        if any(p.start <= slot_start and slot_end <= p.end for p in offering):
            continue
        started = [p for p in offering if p.start <= slot_start < p.end]
        if started:
            plage_end = datetime.fromtimestamp(max(p.end for p in started), UTC)
            raise BookingRefused(
                "outside-plage",
                f"the RDV of {when} would end at {_local(rdv.end, ctx.organisation)[-5:]}, "
                f"after its plage d'ouverture (until {_local(plage_end, ctx.organisation)[-5:]})",
            )
        raise BookingRefused(
            "outside-plage",
            f"on {when} the agent has no plage d'ouverture for « {motif.name} » here",
        )
    if any(h.overlaps(slot) for h in ctx.holidays):
        raise BookingRefused("holiday", f"{when} falls on a public holiday")
    for b in ctx.busy:
        if b.agent_id not in rdv.agent_ids or not (b.start < slot_end and slot_start < b.end):
            continue
        if b.reason == "absence":
            raise BookingRefused("agent-unavailable", f"the agent is absent on {when}")
        if b.reason == "rdv":
            if ctx.organisation.overbooking_allowed and rdv.writer == "agent":
                continue
            raise BookingRefused(
                "slot-unavailable", f"the slot of {when} is already taken", Why.TAKEN
            )
        raise BookingRefused("agent-busy", f"the agent's agenda is busy on {when}")
    if rdv.writer != "agent":
        _check_public_slot(rdv, ctx, motif)


def check_search_scope(
    motif: Motif,
    role: str | None,
    service_ids: frozenset[int],
    secretariat: bool,
) -> None:
    """An agent's créneaux search: a basic agent's covers the motifs of its
    own services; an admin's, or a secrétariat member's, every motif of the
    organisation (``role`` and ``secretariat`` are the agent's in the motif's
    organisation)."""
    if role == "admin" or secretariat or motif.service_id in service_ids:
        return
    raise BookingRefused(
        "out-of-scope",
        f"the motif « {motif.name} » belongs to a service you are not in: an agent searches "
        "the créneaux of its own services' motifs (admins and secrétariats, of all)",
        Why.FORBIDDEN,
    )


DURATION_STEP = timedelta(minutes=5)


def check_duration(rdv: RdvWrite, motif: Motif) -> None:
    """The motif gives an RDV's duration; an agent may set another, a multiple
    of 5 minutes (RDV-SP's guides); usagers and prescripteurs always get the
    motif's.  Whether it fits its plage is ``check_rdv``'s plage test."""
    duration = rdv.end - rdv.start
    minutes = duration.total_seconds() / 60
    shown = f"{minutes:g} minutes"
    if rdv.writer != "agent":
        if duration != timedelta(minutes=motif.duration_minutes):
            raise BookingRefused(
                "wrong-duration",
                f"an RDV for « {motif.name} » lasts {motif.duration_minutes} minutes, not {shown}",
            )
    elif duration % DURATION_STEP:
        raise BookingRefused(
            "wrong-duration",
            f"an RDV lasts a multiple of 5 minutes; {shown} is not one "
            f"(« {motif.name} » lasts {motif.duration_minutes} by default)",
        )


def _check_public_slot(rdv: RdvWrite, ctx: RdvContext, motif: Motif) -> None:
    """Usagers and prescripteurs book only a slot the public page offers."""
    search = Search(
        motif=motif,
        start=rdv.start,
        end=rdv.end,
        now=ctx.now,
        public=True,
        lieu_id=rdv.lieu_id,
        agent_ids=frozenset(rdv.agent_ids),
    )
    offered = find_creneaux(search, ctx.plages, ctx.busy, ctx.holidays)
    if not any(c.start == rdv.start for c in offered):
        raise BookingRefused(
            "booking-delay",
            "this slot is not open for online booking (too soon, too far ahead "
            "or off the slot grid)",
        )


# A usager changes their RDV online until this long before it starts
# (RDV-SP's MIN_DELAY_FOR_CANCEL); later they call the service.
USAGER_CHANGE_LIMIT = timedelta(hours=4)
# The status a usager's own cancellation gives (revoked is the service's).
USAGER_CANCELLED = "excused"
# The codes of ``check_usager_change``'s refusals, whose messages are French.
USAGER_REFUSALS = frozenset(
    {
        "rdv-cancelled",
        "rdv-started",
        "too-late-to-change",
        "usager-change",
        "not-cancellable",
        "not-movable",
    }
)


@dataclass(frozen=True)
class UsagerChange:
    """An existing RDV as a usager would change it: its state before, the
    status asked, whether its time or place changes, and what its motif lets
    usagers do."""

    starts_at: datetime
    status: str
    new_status: str
    moved: bool
    can_cancel: bool
    can_move: bool


def check_usager_change(change: UsagerChange, now: datetime) -> None:
    """Raise BookingRefused unless a usager may make this change: cancel (as
    ``excused``) when the motif allows it, or move when the motif allows it,
    either up to ``USAGER_CHANGE_LIMIT`` before the start.  Nothing else: a
    usager neither reinstates nor marks an RDV seen.  Messages are French:
    they are read by the usager."""
    if change.status in CANCELLED_STATUSES:
        raise BookingRefused("rdv-cancelled", "Ce rendez-vous est déjà annulé.")
    if change.starts_at <= now:
        raise BookingRefused("rdv-started", "Ce rendez-vous a déjà commencé ou est passé.")
    if change.starts_at - now < USAGER_CHANGE_LIMIT:
        hours = int(USAGER_CHANGE_LIMIT.total_seconds() // 3600)
        raise BookingRefused(
            "too-late-to-change",
            f"Un rendez-vous ne peut plus être annulé ni déplacé en ligne moins de {hours} heures "
            "avant son début : appelez le service.",
        )
    if change.new_status in CANCELLED_STATUSES:
        if change.new_status != USAGER_CANCELLED or change.moved:
            raise BookingRefused("usager-change", "Vous pouvez seulement annuler ce rendez-vous.")
        if not change.can_cancel:
            raise BookingRefused(
                "not-cancellable", "Ce rendez-vous ne peut pas être annulé en ligne."
            )
        return
    if change.new_status != change.status:
        raise BookingRefused(
            "usager-change", "Vous pouvez seulement annuler ou déplacer ce rendez-vous."
        )
    if change.moved and not change.can_move:
        raise BookingRefused("not-movable", "Ce rendez-vous ne peut pas être déplacé en ligne.")
