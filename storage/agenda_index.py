"""Repository of the booking index: what the créneaux engine and the booking
rules query of agents' calendars (plages, absences, RDVs, other events).

Rows are written in the transaction that writes the iCalendar item, and the
index follows the item (foreign keys cascade on delete).  Queries are by agent
and time window through ``ix_agenda_occurrences_agent_kind_end``: their cost
follows the window asked, not the agent's history.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, and_, delete, insert, select, text

from storage.schema import agenda_events, agenda_occurrences, agents, items

# Namespace of PostgreSQL advisory locks taken per agent ("cal" in ASCII).
AGENT_LOCK_NAMESPACE = 0x63616C


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
    motif_ids: list[int] | None = None
    # Occurrences stored for the engine: all of a plage's, only busy time otherwise.
    occurrences: list[tuple[int, int]] = field(default_factory=list)


@dataclass(frozen=True)
class OccurrenceRow:
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
    conn.execute(delete(agenda_events).where(agenda_events.c.item_id == item_id))
    if event is None:
        return
    conn.execute(
        insert(agenda_events).values(
            item_id=item_id,
            agent_id=event.agent_id,
            kind=event.kind,
            uid=event.uid,
            organisation_id=event.organisation_id,
            motif_id=event.motif_id,
            lieu_id=event.lieu_id,
            status=event.status,
            motif_ids=None if event.motif_ids is None else json.dumps(sorted(event.motif_ids)),
            starts_at=event.starts_at,
            ends_at=event.ends_at,
            expanded_until=event.expanded_until,
        )
    )
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
                for s, e in event.occurrences
            ],
        )


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
        motif_ids=None if row.motif_ids is None else json.loads(row.motif_ids),
    )


def item_id(conn: Connection, collection_id: int, href: str) -> int | None:
    return conn.execute(
        select(items.c.id).where(items.c.collection_id == collection_id, items.c.href == href)
    ).scalar_one_or_none()


def occurrences(
    conn: Connection, agent_ids: Sequence[int], kinds: Sequence[str], start: int, end: int
) -> list[OccurrenceRow]:
    """Stored occurrences of these agents' events of these kinds overlapping [start, end)."""
    if not agent_ids:
        return []
    o, e = agenda_occurrences, agenda_events
    query = (
        select(
            o.c.item_id,
            o.c.agent_id,
            o.c.kind,
            o.c.r_start,
            o.c.r_end,
            e.c.uid,
            e.c.lieu_id,
            e.c.motif_ids,
            e.c.status,
        )
        .join(e, e.c.item_id == o.c.item_id)
        .where(
            o.c.agent_id.in_(list(agent_ids)),
            o.c.kind.in_(list(kinds)),
            o.c.r_end > start,
            o.c.r_start < end,
        )
    )
    return [
        OccurrenceRow(
            r.item_id,
            r.agent_id,
            r.kind,
            r.r_start,
            r.r_end,
            r.uid,
            r.lieu_id,
            None if r.motif_ids is None else json.loads(r.motif_ids),
            r.status,
        )
        for r in conn.execute(query)
    ]


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
