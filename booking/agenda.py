"""Every write to an agent's agendas and every slot search goes through here.

``prepare_write`` is the one check: the CalDAV storage plugin calls it inside
``upload()`` and the JSON API calls it through that same upload, so a rule
cannot differ between paths.  It runs in the request's write transaction
after taking the per-agent lock, so the state it checks is the state it
writes over: two overlapping bookings racing for one agent cannot both pass.

``find_creneaux`` gathers, for a motif and a window, the same data the check
reads (plage occurrences, busy time, holidays) and hands it to the engine.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection

from booking import creneaux as engine
from booking import events, limits
from booking.model import (
    RDV_STATUSES,
    Busy,
    Creneau,
    Motif,
    Organisation,
    PlageOccurrence,
    holds_time,
)
from booking.model import ts as _ts
from booking.public_holidays import holiday_intervals
from booking.recurrence import occurrences
from booking.rules import (
    BookingRefused,
    RdvContext,
    RdvWrite,
    UsagerChange,
    Why,
    check_rdv,
    check_search_scope,
    check_usager_change,
)
from storage import agenda_index, calendars, scheduling
from storage.agenda_index import IndexedEvent

# Occurrences are stored from a year back to two years ahead; a search beyond
# expands the series on demand.
PAST = timedelta(days=366)
HORIZON = timedelta(days=2 * 365)
DEFAULT_ZONE = "Europe/Paris"
# Collection kind -> what its events are for booking.
KINDS = {"rdv": "rdv", "plages": "plage", "indisponibilites": "absence"}


def rdv_agenda(login: str) -> str:
    """The path of the agent's agenda of RDVs, where every path books."""
    return f"{login}/rdv"


BUSY_KINDS = ("absence", "rdv", "event")
# Next availability looks a day ahead first, then twice as far each time, up
# to two weeks a search: the first slot is usually near, and a search's cost
# grows with the days of agendas it reads.
_FIRST_WINDOW = timedelta(days=1)
_NEXT_WINDOW = timedelta(days=14)


def _dt(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def organisation_of_motif(conn: Connection, motif_record: dict) -> Organisation:
    """The engine's view of the organisation a motif belongs to (it always has one)."""
    record = scheduling.organisation(conn, motif_record["organisation_id"])
    assert record is not None  # motifs.organisation_id is a foreign key
    return organisation_of(record)


def organisation_of(record: dict) -> Organisation:
    return Organisation(
        id=record["id"],
        time_zone=record["time_zone"],
        holiday_zone=record["holiday_zone"],
        pentecost_worked=bool(record["pentecost_worked"]),
        overbooking_allowed=bool(record["overbooking_allowed"]),
    )


def motif_of(record: dict) -> Motif:
    return Motif(
        id=record["id"],
        service_id=record["service_id"],
        name=record["name"],
        duration_minutes=record["duration_minutes"],
        location_type=record["location_type"],
        bookable_by=record["bookable_by"],
        min_delay_minutes=record["min_delay_minutes"],
        max_delay_minutes=record["max_delay_minutes"],
    )


@dataclass
class AgendaWrite:
    """What to store for an item of an agent's calendar: its (possibly
    restamped) text and its booking index; and what the text says, for the
    outbox (``booking.agenda_outbox``)."""

    text: str
    index: IndexedEvent | None
    parsed: events.ParsedEvent | None = None


def agent_zone(conn: Connection, agent_id: int) -> str:
    """The zone floating times of an agent's agendas are read in: that of its
    first organisation."""
    found = scheduling.organisations_of(conn, agent_id)
    return found[0][1] if found else DEFAULT_ZONE


def _expand(
    parsed: events.ParsedEvent, zone: str, start: datetime, end: datetime
) -> tuple[list[tuple[int, int]], datetime]:
    """The series' occurrences in [start, end) (bounded: see
    ``booking.recurrence``) and the instant up to which they are complete."""
    found = occurrences(parsed.calendar, start, end, zone)
    return [(_ts(s), _ts(e)) for s, e in found.spans], found.complete_until


def _stored_window(parsed: events.ParsedEvent, now: datetime) -> tuple[datetime, datetime]:
    start = max(parsed.start, now - PAST) if parsed.recurring else parsed.start
    return start, now + HORIZON


def _index(
    parsed: events.ParsedEvent, agent_id: int, kind: str, zone: str, now: datetime, **fields
) -> IndexedEvent:
    window_start, horizon = _stored_window(parsed, now)
    if parsed.recurring:
        spans, horizon = _expand(parsed, zone, window_start, horizon)
    else:
        spans = [(_ts(parsed.start), _ts(parsed.end))]
    # A series may run past the stored horizon: searches beyond it expand it.
    ends_at = calendars.FAR_FUTURE if parsed.recurring else _ts(parsed.end)
    return IndexedEvent(
        agent_id=agent_id,
        kind=kind,
        uid=parsed.uid,
        starts_at=_ts(parsed.start),
        ends_at=ends_at,
        expanded_until=_ts(horizon),
        occurrences=spans,
        **fields,
    )


def _describe(
    parsed: events.ParsedEvent,
    agent_id: int,
    kind: str,
    zone: str,
    now: datetime,
    *,
    sequence: int | None = None,
    organisation_id: int | None = None,
) -> IndexedEvent:
    """What the index holds for one item of an agent's calendar: an RDV's busy
    time while it holds its slot, every plage occurrence, an absence's time,
    and an ordinary event's time when it is OPAQUE and not cancelled."""
    if kind == "rdv":
        status = parsed.rdv_status
        span = (_ts(parsed.start), _ts(parsed.end))
        return IndexedEvent(
            agent_id=agent_id,
            kind="rdv",
            uid=parsed.uid,
            starts_at=span[0],
            ends_at=span[1],
            expanded_until=calendars.FAR_FUTURE,
            organisation_id=organisation_id,
            motif_id=parsed.motif_ids[0] if parsed.motif_ids else None,
            lieu_id=parsed.lieu_id,
            status=status,
            sequence=parsed.sequence if sequence is None else sequence,
            usager_ids=list(parsed.usager_ids),
            occurrences=[span] if holds_time(status) else [],
        )
    index = _index(parsed, agent_id, kind, zone, now, organisation_id=organisation_id)
    if kind == "plage":
        index.lieu_id, index.motif_ids = parsed.lieu_id, parsed.motif_ids or None
    elif kind == "event" and (parsed.cancelled or not parsed.opaque):
        index.occurrences = []  # a transparent or cancelled event blocks nothing
    return index


def prepare_write(
    conn: Connection,
    *,
    owner: str,
    collection_kind: str,
    collection_id: int,
    href: str,
    text: str,
    writer: str = "agent",
    now: datetime | None = None,
) -> AgendaWrite:
    """Check an item about to be written to ``owner``'s calendar and say what
    to store; raise BookingRefused (nothing is written) when a rule says no."""
    agent = scheduling.agent_by_login(conn, owner)
    if agent is None:
        return AgendaWrite(text, None)
    now = now or datetime.now(UTC)
    zone = agent_zone(conn, agent["id"])
    kind = KINDS.get(collection_kind, "event")
    try:
        parsed = events.parse(text, zone)
    except BookingRefused:
        if kind == "event":  # an ordinary calendar takes any object; it just blocks nothing
            return AgendaWrite(text, None)
        raise
    if kind != "event":
        limits.check_entry(parsed.master, parsed.start, parsed.end, zone, now)
    if kind == "rdv":
        return _prepare_rdv(conn, agent["id"], collection_id, href, parsed, writer, now)
    if kind == "plage":
        _check_plage(conn, agent["id"], parsed)
    organisation = _entry_organisation(conn, kind, parsed)
    index = _describe(parsed, agent["id"], kind, zone, now, organisation_id=organisation)
    return AgendaWrite(text, index, parsed)


def fresh_index(
    conn: Connection, collection: calendars.CollectionRow, text: str, now: datetime
) -> IndexedEvent | None:
    """What the booking index says of an item as stored, from its text alone
    (no rule is checked: it is stored already): what ``prepare_write`` stored
    with it.  None when it books nothing (not an agent's calendar, or text
    the engine cannot read)."""
    agent = scheduling.agent_by_login(conn, collection.owner)
    if agent is None:
        return None
    zone = agent_zone(conn, agent["id"])
    kind = KINDS.get(collection.kind, "event")
    try:
        parsed = events.parse(text, zone)
    except BookingRefused:
        return None
    organisation = _entry_organisation(conn, kind, parsed)
    return _describe(parsed, agent["id"], kind, zone, now, organisation_id=organisation)


def reindex(conn: Connection, now: datetime | None = None, *, everything: bool = False) -> int:
    """Index the items of agents' calendars as they stand: those without an
    index row (a database upgraded from before the agenda index), or every
    one (``everything``: the index made again from the stored texts).
    Returns how many items were indexed."""
    now = now or datetime.now(UTC)
    count = 0
    found = agenda_index.calendar_items(conn, unindexed_only=not everything)
    for collection, item_id, text in found:
        index = fresh_index(conn, collection, text, now)
        if index is None and not everything:
            continue
        agenda_index.replace_event(conn, item_id, index)
        count += 1
    return count


def _entry_organisation(conn: Connection, kind: str, parsed: events.ParsedEvent) -> int | None:
    """The organisation an RDV (its motif's) or a plage (its last motif's,
    else its lieu's) belongs to in the index; None for other entries."""
    if kind == "rdv":
        motif = scheduling.motif(conn, parsed.motif_ids[0]) if parsed.motif_ids else None
        return motif["organisation_id"] if motif else None
    if kind != "plage":
        return None
    records = [scheduling.lieu(conn, parsed.lieu_id)] if parsed.lieu_id is not None else []
    records += [scheduling.motif(conn, motif_id) for motif_id in parsed.motif_ids]
    found = [record["organisation_id"] for record in records if record is not None]
    return found[-1] if found else None


def _check_plage(conn: Connection, agent_id: int, parsed: events.ParsedEvent) -> None:
    """A plage's motifs and lieu must exist in one of the agent's organisations."""
    if parsed.end <= parsed.start:
        raise BookingRefused("invalid-plage", "a plage d'ouverture must end after it starts")
    if parsed.end - parsed.start > timedelta(hours=24):
        raise BookingRefused("invalid-plage", "a plage d'ouverture lies within one day")
    roles = scheduling.roles_of(conn, agent_id)
    lieu = scheduling.lieu(conn, parsed.lieu_id) if parsed.lieu_id is not None else None
    if parsed.lieu_id is not None and (lieu is None or lieu["organisation_id"] not in roles):
        raise BookingRefused("unknown-lieu", f"there is no lieu {parsed.lieu_id} here")
    for motif_id in parsed.motif_ids:
        motif = scheduling.motif(conn, motif_id)
        if motif is None or motif["organisation_id"] not in roles:
            raise BookingRefused("unknown-motif", f"there is no motif {motif_id} here")
        if motif["location_type"] == "public_office" and lieu is None:
            raise BookingRefused(
                "lieu-required", f"« {motif['name']} » is received at a lieu: the plage needs one"
            )


def _prepare_rdv(
    conn: Connection,
    agent_id: int,
    collection_id: int,
    href: str,
    parsed: events.ParsedEvent,
    writer: str,
    now: datetime,
) -> AgendaWrite:
    if parsed.recurring:
        raise BookingRefused("invalid-event", "an RDV happens once: it cannot repeat")
    agenda_index.lock_agents(conn, [agent_id])
    existing = agenda_index.item_id(conn, collection_id, href)
    old = agenda_index.indexed_event(conn, existing) if existing is not None else None
    status = parsed.rdv_status
    if status not in RDV_STATUSES:
        raise BookingRefused(
            "invalid-status",
            f"unknown status {status[:40]!r}; use one of {', '.join(RDV_STATUSES)}",
        )
    motif_id = parsed.motif_ids[0] if parsed.motif_ids else None
    motif_record = scheduling.motif(conn, motif_id) if motif_id is not None else None
    roles = scheduling.roles_of(conn, agent_id)
    if motif_record is None or motif_record["organisation_id"] not in roles:
        raise BookingRefused(
            "unknown-motif",
            "an RDV needs the motif of one of the agent's organisations (X-CALSERVER-MOTIF)",
        )
    organisation = organisation_of_motif(conn, motif_record)
    usagers_of_rdv(conn, parsed.usager_ids, organisation.id)
    # New, moved (in time, to another agent's agenda, from another kind of
    # agenda), changed motif or lieu, or a cancelled RDV reinstated.
    moved = old is None or (
        (old.agent_id, old.kind, old.starts_at, old.ends_at, old.motif_id, old.lieu_id)
        != (agent_id, "rdv", _ts(parsed.start), _ts(parsed.end), motif_id, parsed.lieu_id)
        or (not holds_time(old.status or "unknown") and holds_time(status))
    )
    if writer == "usager" and old is not None:
        placed = (agent_id, _ts(parsed.start), _ts(parsed.end), motif_id, parsed.lieu_id)
        change = UsagerChange(
            starts_at=_dt(old.starts_at),
            status=old.status or "unknown",
            new_status=status,
            moved=placed != (old.agent_id, old.starts_at, old.ends_at, old.motif_id, old.lieu_id),
            can_cancel=bool(motif_record["usager_can_cancel"]),
            can_move=bool(motif_record["usager_can_move"]),
        )
        check_usager_change(change, now)
    if moved and holds_time(status):
        _check_offered(conn, motif_record, parsed.lieu_id)
    if moved:
        rdv = RdvWrite(
            uid=parsed.uid,
            agent_ids=(agent_id,),
            start=parsed.start,
            end=parsed.end,
            motif_id=motif_id,
            lieu_id=parsed.lieu_id,
            status=status,
            writer=writer,
        )
        context = rdv_context(conn, organisation, motif_of(motif_record), rdv, now, existing)
        check_rdv(rdv, context)
    sequence = parsed.sequence if old is None else max(parsed.sequence, old.sequence + 1)
    text = events.stamp_rdv(parsed, sequence, now)
    index = _describe(
        parsed, agent_id, "rdv", "UTC", now, sequence=sequence, organisation_id=organisation.id
    )
    return AgendaWrite(text, index, parsed)


def usagers_of_rdv(conn: Connection, usager_ids: Sequence[int], organisation_id: int) -> list[dict]:
    """An RDV's usagers, each of the RDV's organisation (domain.md): checked on
    every write, moved or not, since a client may change only the usagers, and
    a usager of another organisation would leak into this one's agendas and
    feeds."""
    found = []
    for usager_id in usager_ids:
        usager = scheduling.usager(conn, usager_id)
        if usager is None or usager["organisation_id"] != organisation_id:
            raise BookingRefused(
                "unknown-usager", f"there is no usager {usager_id} in this organisation"
            )
        found.append(usager)
    return found


def _check_offered(conn: Connection, motif: dict, lieu_id: int | None) -> None:
    """A new or moved RDV needs a motif still offered and an open lieu of its
    organisation."""
    if not motif["enabled"]:
        raise BookingRefused("unknown-motif", f"the motif « {motif['name']} » is no longer offered")
    if lieu_id is not None:
        lieu = scheduling.lieu(conn, lieu_id)
        if (
            lieu is None
            or lieu["organisation_id"] != motif["organisation_id"]
            or not lieu["enabled"]
        ):
            raise BookingRefused(
                "unknown-lieu", "this lieu is not an open lieu of the organisation"
            )


def rdv_context(
    conn: Connection,
    organisation: Organisation,
    motif: Motif,
    rdv: RdvWrite,
    now: datetime,
    replaced_item: int | None = None,
) -> RdvContext:
    """What the rules read around an RDV, without the item it replaces.  The
    whole day around it: a slot offered to usagers depends on the busy time
    earlier in its plage (the grid restarts after each RDV)."""
    plages, busy = gather(
        conn,
        list(rdv.agent_ids),
        rdv.start - timedelta(days=1),
        rdv.end + timedelta(days=1),
        exclude_item=replaced_item,
    )
    return RdvContext(
        organisation=organisation,
        motif=motif,
        plages=plages,
        busy=busy,
        holidays=holiday_intervals(organisation, rdv.start, rdv.end),
        now=now,
    )


def gather(
    conn: Connection,
    agent_ids: list[int],
    start: datetime,
    end: datetime,
    *,
    exclude_item: int | None = None,
) -> tuple[list[PlageOccurrence], list[Busy]]:
    """Plage occurrences and busy time of these agents overlapping [start, end)."""
    services = {
        agent: frozenset(ids) for agent, ids in scheduling.service_ids_of(conn, agent_ids).items()
    }
    blocking = agenda_index.agents_blocking_other_calendars(conn, agent_ids)
    kinds = ("plage", *BUSY_KINDS)
    rows = agenda_index.occurrences(conn, agent_ids, kinds, _ts(start), _ts(end))
    for item_id, event, text in agenda_index.unexpanded_texts(
        conn, agent_ids, ("plage", "absence", "event"), _ts(start), _ts(end)
    ):
        zone = agent_zone(conn, event.agent_id)
        parsed = events.parse(text, zone)
        if event.kind == "event" and (parsed.cancelled or not parsed.opaque):
            continue
        later = max(start, _dt(event.expanded_until))
        spans, _ = _expand(parsed, zone, later, end)
        rows.extend(
            agenda_index.OccurrenceRow(
                item_id, event.agent_id, event.kind, s, e, event.uid, event.lieu_id,
                event.motif_ids, event.status,
            )
            for s, e in spans
        )  # fmt: skip
    plages: list[PlageOccurrence] = []
    busy: list[Busy] = []
    motif_sets: dict[int, frozenset[int] | None] = {}
    for row in rows:
        if row.item_id == exclude_item:
            continue
        if row.kind == "plage":
            if row.item_id not in motif_sets:
                motif_sets[row.item_id] = (
                    None if row.motif_ids is None else frozenset(row.motif_ids)
                )
            plages.append(
                PlageOccurrence(
                    row.agent_id,
                    row.item_id,
                    row.r_start,
                    row.r_end,
                    row.lieu_id,
                    motif_sets[row.item_id],
                    services.get(row.agent_id, frozenset()),
                )
            )
        elif row.kind != "event" or row.agent_id in blocking:
            busy.append(Busy(row.agent_id, row.r_start, row.r_end, row.kind, row.uid))
    plages.sort(key=lambda p: (p.start, p.order))
    return plages, busy


@dataclass(frozen=True)
class SlotQuery:
    """A créneaux search; ``searcher``: the agent asking, held to its scope
    (``booking.rules.check_search_scope``)."""

    motif_id: int
    start: datetime
    end: datetime
    public: bool = False
    lieu_id: int | None = None
    agent_ids: Sequence[int] | None = None
    searcher: int | None = None


def _check_scope(conn: Connection, agent_id: int, motif: Motif, organisation_id: int) -> None:
    role = scheduling.roles_of(conn, agent_id).get(organisation_id)
    services = frozenset(scheduling.service_ids_of(conn, [agent_id])[agent_id])
    secretariat = organisation_id in scheduling.secretariat_organisations(conn, agent_id)
    check_search_scope(motif, role, services, secretariat)


def find_creneaux(
    conn: Connection,
    query: SlotQuery,
    now: datetime | None = None,
    deadline: float | None = None,
) -> list[Creneau]:
    """The slots a motif offers over the query's window (BookingRefused when
    the motif does not exist or cannot be booked publicly, when the window
    lies outside ``limits.check_search``'s or the search passes ``deadline``,
    a ``time.monotonic()`` instant)."""
    now = now or datetime.now(UTC)
    limits.check_search(query.start, query.end, now)
    motif_record = scheduling.motif(conn, query.motif_id)
    if motif_record is None or not motif_record["enabled"]:
        raise BookingRefused("unknown-motif", f"there is no motif {query.motif_id}", Why.MISSING)
    if query.public and motif_record["bookable_by"] != "everyone":
        raise BookingRefused("motif-not-bookable", "this motif is not open for online booking")
    motif = motif_of(motif_record)
    if query.searcher is not None:
        _check_scope(conn, query.searcher, motif, motif_record["organisation_id"])
    organisation = organisation_of_motif(conn, motif_record)
    agents = scheduling.agents_of_service(conn, motif_record["service_id"])
    if query.agent_ids is not None:
        agents = [a for a in agents if a in set(query.agent_ids)]
    # A day before the window: busy time earlier in a plage shapes its grid.
    plages, busy = gather(conn, agents, query.start - timedelta(days=1), query.end)
    limits.check_deadline(deadline)
    search = engine.Search(
        motif=motif,
        start=query.start,
        end=query.end,
        now=now,
        public=query.public,
        lieu_id=query.lieu_id,
        agent_ids=frozenset(agents),
    )
    holidays = holiday_intervals(organisation, query.start, query.end)
    found = engine.find_creneaux(search, plages, busy, holidays)
    limits.check_deadline(deadline)
    return found


def creneau_at(conn: Connection, query: SlotQuery, now: datetime | None = None) -> Creneau | None:
    """The slot the search offers at the very start of the query's window
    (a slot chosen on a page, checked again), or None."""
    return next((c for c in find_creneaux(conn, query, now) if c.start == query.start), None)


def next_availability(
    conn: Connection,
    query: SlotQuery,
    now: datetime | None = None,
    deadline: float | None = None,
) -> Creneau | None:
    """The first slot from the query's start, looking up to its end (at most
    the motif's maximum delay for public booking): a day first, then windows
    twice as long, two weeks at most.

    Slots are taken by their start; each window's search reads one slot's
    length further, so a slot starting before the window's end and ending
    after it is seen with the busy time that follows."""
    now = now or datetime.now(UTC)
    limits.check_search(query.start, query.end, now)
    motif = scheduling.motif(conn, query.motif_id)
    beyond = timedelta(minutes=motif["duration_minutes"]) if motif else timedelta(0)
    cursor, window = query.start, _FIRST_WINDOW
    while cursor < query.end:
        window_end = min(cursor + window, query.end)
        looked = dataclasses.replace(query, start=cursor, end=min(window_end + beyond, query.end))
        found = [c for c in find_creneaux(conn, looked, now, deadline) if c.start < window_end]
        if found:
            return found[0]
        cursor, window = window_end, min(2 * window, _NEXT_WINDOW)
    return None
