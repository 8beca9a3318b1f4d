"""Repository of the booking index: what the créneaux engine and the booking
rules query of agents' calendars (plages, absences, RDVs, other events).

Rows are written in the transaction that writes the iCalendar item, and the
index follows the item (foreign keys cascade on delete).  Queries are by agent
and time window through ``ix_agenda_occurrences_agent_kind_start``: their cost
follows the window asked, not the agent's history.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from sqlalchemy import Connection, and_, bindparam, delete, insert, select, text

from storage import calendars
from storage.calendars import CollectionRow
from storage.schema import (
    agenda_events,
    agenda_occurrences,
    agents,
    collections,
    items,
    rdv_usagers,
)

# Namespace of PostgreSQL advisory locks taken per agent ("cal" in ASCII).
AGENT_LOCK_NAMESPACE = 0x63616C
# Occurrences are stored in pieces of at most this length (a three-week
# absence is 21 rows), so that a window query bounds its index scan on both
# sides: r_start in [window start - MAX_PIECE, window end).
MAX_PIECE = 86_400
# Namespace of the public ids of indexed events (uuid5 of the item's id).
PUBLIC_ID_NAMESPACE = uuid.UUID("6f1c1d2e-5b0a-4a8e-9a55-2f4b2a7c9e31")


def public_id(item_id: int) -> str:
    """The opaque id feeds and outside links use for an item: nothing of the
    client's UID (which may hold a name), the same for every version of the
    item, and resolved back through the indexed ``agenda_events.public_id``."""
    return str(uuid.uuid5(PUBLIC_ID_NAMESPACE, f"item/{item_id}"))


@dataclass
class IndexedEvent:
    agent_id: int
    kind: str  # plage / absence / rdv / event
    uid: str
    starts_at: int
    ends_at: int
    expanded_until: int
    organisation_id: int | None = None
    motif_id: int | None = None
    lieu_id: int | None = None
    status: str | None = None
    sequence: int = 0
    motif_ids: list[int] | None = None
    # An RDV's usagers (``rdv_usagers``).
    usager_ids: list[int] = field(default_factory=list)
    # Occurrences stored for the engine: all of a plage's, only busy time otherwise.
    occurrences: list[tuple[int, int]] = field(default_factory=list)


class OccurrenceRow(NamedTuple):
    item_id: int
    agent_id: int
    kind: str
    r_start: int
    r_end: int
    uid: str
    lieu_id: int | None
    motif_ids: list[int] | None
    status: str | None


def lock_agents(conn: Connection, agent_ids: Iterable[int]) -> None:
    """Serialize the writers of these agents' agendas until the transaction ends.

    PostgreSQL: transaction-level advisory locks, taken in id order so two
    writers never wait on each other crosswise; they hold across processes and
    hosts.  SQLite: a write transaction (BEGIN IMMEDIATE) already holds the
    database's only write lock."""
    if conn.dialect.name != "postgresql":
        return
    for agent_id in sorted(set(agent_ids)):
        conn.execute(
            text("SELECT pg_advisory_xact_lock(:ns, :agent)"),
            {"ns": AGENT_LOCK_NAMESPACE, "agent": agent_id},
        )


def replace_event(conn: Connection, item_id: int, event: IndexedEvent | None) -> None:
    """Make the index say ``event`` for this item (None: the item books nothing)."""
    conn.execute(delete(agenda_occurrences).where(agenda_occurrences.c.item_id == item_id))
    conn.execute(delete(rdv_usagers).where(rdv_usagers.c.item_id == item_id))
    conn.execute(delete(agenda_events).where(agenda_events.c.item_id == item_id))
    if event is None:
        return
    conn.execute(
        insert(agenda_events).values(
            item_id=item_id,
            public_id=public_id(item_id),
            agent_id=event.agent_id,
            kind=event.kind,
            uid=event.uid,
            organisation_id=event.organisation_id,
            motif_id=event.motif_id,
            lieu_id=event.lieu_id,
            status=event.status,
            sequence=event.sequence,
            motif_ids=None if event.motif_ids is None else json.dumps(sorted(event.motif_ids)),
            starts_at=event.starts_at,
            ends_at=event.ends_at,
            expanded_until=event.expanded_until,
        )
    )
    set_usagers(conn, item_id, event.usager_ids)
    if event.occurrences:
        conn.execute(
            insert(agenda_occurrences),
            [
                {
                    "item_id": item_id,
                    "agent_id": event.agent_id,
                    "kind": event.kind,
                    "r_start": s,
                    "r_end": e,
                }
                for s, e in pieces(event.occurrences)
            ],
        )


def set_usagers(conn: Connection, item_id: int, usager_ids: Iterable[int]) -> None:
    """Add the usagers of an indexed RDV (once each)."""
    unique = sorted(set(usager_ids))
    if unique:
        conn.execute(insert(rdv_usagers), [{"item_id": item_id, "usager_id": u} for u in unique])


def items_with_usagers(conn: Connection) -> set[int]:
    return set(conn.execute(select(rdv_usagers.c.item_id).distinct()).scalars())


def pieces(spans: Iterable[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """Spans cut into consecutive pieces of at most MAX_PIECE seconds."""
    for start, end in spans:
        while end - start > MAX_PIECE:
            yield start, start + MAX_PIECE
            start += MAX_PIECE
        yield start, end


def indexed_event(conn: Connection, item_id: int) -> IndexedEvent | None:
    row = conn.execute(select(agenda_events).where(agenda_events.c.item_id == item_id)).first()
    return None if row is None else _event(row)


def _event(row) -> IndexedEvent:  # type: ignore[no-untyped-def]
    return IndexedEvent(
        agent_id=row.agent_id,
        kind=row.kind,
        uid=row.uid,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        expanded_until=row.expanded_until,
        organisation_id=row.organisation_id,
        motif_id=row.motif_id,
        lieu_id=row.lieu_id,
        status=row.status,
        sequence=row.sequence,
        motif_ids=None if row.motif_ids is None else json.loads(row.motif_ids),
    )


def item_id(conn: Connection, collection_id: int, href: str) -> int | None:
    return conn.execute(
        select(items.c.id).where(items.c.collection_id == collection_id, items.c.href == href)
    ).scalar_one_or_none()


_SPANS = select(
    agenda_occurrences.c.item_id,
    agenda_occurrences.c.agent_id,
    agenda_occurrences.c.kind,
    agenda_occurrences.c.r_start,
    agenda_occurrences.c.r_end,
).where(
    agenda_occurrences.c.agent_id.in_(bindparam("agents", expanding=True)),
    agenda_occurrences.c.kind.in_(bindparam("kinds", expanding=True)),
    agenda_occurrences.c.r_start >= bindparam("lowest"),
    agenda_occurrences.c.r_start < bindparam("end"),
    agenda_occurrences.c.r_end > bindparam("start"),
)
_EVENTS = select(
    agenda_events.c.item_id,
    agenda_events.c.uid,
    agenda_events.c.lieu_id,
    agenda_events.c.motif_ids,
    agenda_events.c.status,
).where(agenda_events.c.item_id.in_(bindparam("ids", expanding=True)))


def occurrences(
    conn: Connection, agent_ids: Sequence[int], kinds: Sequence[str], start: int, end: int
) -> list[OccurrenceRow]:
    """Stored occurrences of these agents' events of these kinds overlapping
    [start, end).  The spans come from the covering index alone, its scan
    bounded by the window whatever the history; then the few events they
    belong to."""
    if not agent_ids:
        return []
    params = {
        "agents": list(agent_ids),
        "kinds": list(kinds),
        "lowest": start - MAX_PIECE,
        "start": start,
        "end": end,
    }
    spans = conn.execute(_SPANS, params).all()
    events: dict[int, tuple] = {}
    ids = list({span[0] for span in spans})
    for i in range(0, len(ids), 500):
        for row in conn.execute(_EVENTS, {"ids": ids[i : i + 500]}):
            events[row[0]] = (row[1], row[2], json.loads(row[3]) if row[3] else None, row[4])
    found = []
    for item_id, agent_id, kind, r_start, r_end in spans:
        uid, lieu_id, motif_ids, status = events[item_id]
        found.append(
            OccurrenceRow(item_id, agent_id, kind, r_start, r_end, uid, lieu_id, motif_ids, status)
        )
    return found


def unexpanded_texts(
    conn: Connection, agent_ids: Sequence[int], kinds: Sequence[str], start: int, end: int
) -> list[tuple[int, IndexedEvent, str]]:
    """Events whose stored occurrences stop before ``end`` and that may have
    later ones in [start, end): (item id, event, iCalendar text) to expand."""
    if not agent_ids:
        return []
    e = agenda_events
    query = (
        select(e, items.c.text)
        .join(items, items.c.id == e.c.item_id)
        .where(
            e.c.agent_id.in_(list(agent_ids)),
            e.c.kind.in_(list(kinds)),
            and_(e.c.expanded_until < end, e.c.ends_at > start, e.c.starts_at < end),
        )
    )
    return [(r.item_id, _event(r), r.text) for r in conn.execute(query)]


def calendar_items(
    conn: Connection, *, unindexed_only: bool = True
) -> Iterator[tuple[CollectionRow, int, str]]:
    """(collection, item id, text) of every item of a calendar (only those
    with no index row yet when ``unindexed_only``)."""
    query = select(items.c.id, items.c.collection_id)
    if unindexed_only:
        indexed = select(agenda_events.c.item_id).where(agenda_events.c.item_id == items.c.id)
        query = query.where(~indexed.exists())
    pending = conn.execute(query.order_by(items.c.collection_id, items.c.id)).all()
    by_id: dict[int, CollectionRow | None] = {}
    for item_id, collection_id in pending:
        if collection_id not in by_id:
            path = conn.execute(
                select(collections.c.path).where(collections.c.id == collection_id)
            ).scalar_one()
            found = calendars.get_collection(conn, path)
            by_id[collection_id] = (
                found if found and found.props.get("tag") == "VCALENDAR" else None
            )
        collection = by_id[collection_id]
        item_text = calendars.item_text(conn, item_id)
        if collection is not None and item_text is not None:
            yield collection, item_id, item_text


def indexed_items(
    conn: Connection, kinds: Sequence[str]
) -> Iterator[tuple[int, IndexedEvent, str]]:
    """(item id, event, iCalendar text) of every indexed item of these kinds."""
    query = (
        select(agenda_events, items.c.text)
        .join(items, items.c.id == agenda_events.c.item_id)
        .where(agenda_events.c.kind.in_(list(kinds)))
        .order_by(agenda_events.c.item_id)
    )
    for row in conn.execute(query):
        yield row.item_id, _event(row), row.text


def texts_in_window(conn: Connection, agent_id: int, kind: str, start: int, end: int) -> list[str]:
    """Texts of the agent's events of one kind starting in [start, end), by start."""
    e = agenda_events
    query = (
        select(items.c.text)
        .join(e, e.c.item_id == items.c.id)
        .where(
            e.c.agent_id == agent_id, e.c.kind == kind, e.c.starts_at >= start, e.c.starts_at < end
        )
        .order_by(e.c.starts_at, e.c.item_id)
    )
    return list(conn.execute(query).scalars())


def agents_blocking_other_calendars(conn: Connection, agent_ids: Sequence[int]) -> set[int]:
    if not agent_ids:
        return set()
    return set(
        conn.execute(
            select(agents.c.id).where(
                agents.c.id.in_(list(agent_ids)), agents.c.other_calendars_block.is_(True)
            )
        ).scalars()
    )


class PlacedRdv(NamedTuple):
    """Where an indexed RDV lives: its agenda's path and owner, its href and
    text, and what the index says of it."""

    item_id: int
    collection_path: str
    owner: str
    href: str
    text: str
    event: IndexedEvent


def placed_rdv(
    conn: Connection, *, item_id: int | None = None, public: str | None = None
) -> PlacedRdv | None:
    """The RDV with this item id or public id (``public_id``), None when no
    RDV has it (an item of another kind, a deleted one)."""
    e = agenda_events
    query = (
        select(e, items.c.href, items.c.text, collections.c.path, collections.c.owner)
        .join(items, items.c.id == e.c.item_id)
        .join(collections, collections.c.id == items.c.collection_id)
        .where(e.c.kind == "rdv")
    )
    if item_id is not None:
        query = query.where(e.c.item_id == item_id)
    elif public is not None:
        query = query.where(e.c.public_id == public)
    else:
        return None
    row = conn.execute(query).first()
    if row is None:
        return None
    return PlacedRdv(row.item_id, row.path, row.owner, row.href, row.text, _event(row))


def plage_offers(conn: Connection, organisation_id: int, after: int) -> set[tuple[int, int | None]]:
    """(motif id, lieu id) of every plage of the organisation that names its
    motifs and runs after ``after``: what online booking may offer (a plage
    that names no motif offers nothing to usagers)."""
    e = agenda_events
    query = select(e.c.motif_ids, e.c.lieu_id).where(
        e.c.kind == "plage",
        e.c.organisation_id == organisation_id,
        e.c.ends_at > after,
        e.c.motif_ids.is_not(None),
    )
    found: set[tuple[int, int | None]] = set()
    for motif_ids, lieu_id in conn.execute(query):
        found.update((motif_id, lieu_id) for motif_id in json.loads(motif_ids))
    return found
