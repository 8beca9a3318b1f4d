"""Repository of an organisation's RDVs as lists: filtered by agent, motif,
lieu, status and period (the admin API's lists, exports and statistics), and
a usager's history.

Read from the booking index (``agenda_events``, one row per RDV with its
organisation, motif, lieu, status and times, and ``rdv_usagers``), never from
the iCalendar text: a list of 10,000 RDVs is a few indexed queries.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Select, func, select

from storage.schema import agenda_events, agents, lieux, motifs, rdv_usagers, services, usagers


@dataclass(frozen=True)
class RdvFilter:
    """Which RDVs of an organisation: those of ``agent_ids`` (the agendas the
    reader may see), starting in [start, end) (POSIX seconds), optionally of
    one motif, at one lieu, and with one of ``statuses``."""

    organisation_id: int
    agent_ids: Sequence[int]
    start: int
    end: int
    motif_id: int | None = None
    lieu_id: int | None = None
    statuses: Sequence[str] = ()


def _where(query: Select, wanted: RdvFilter) -> Select:
    e = agenda_events
    query = query.where(
        e.c.organisation_id == wanted.organisation_id,
        e.c.kind == "rdv",
        e.c.starts_at >= wanted.start,
        e.c.starts_at < wanted.end,
        e.c.agent_id.in_(list(wanted.agent_ids)),
    )
    if wanted.motif_id is not None:
        query = query.where(e.c.motif_id == wanted.motif_id)
    if wanted.lieu_id is not None:
        query = query.where(e.c.lieu_id == wanted.lieu_id)
    if wanted.statuses:
        query = query.where(e.c.status.in_(list(wanted.statuses)))
    return query


def rdvs(conn: Connection, wanted: RdvFilter) -> list[dict]:
    """The RDVs, by start: uid, agent, motif, service, lieu (ids and names),
    status, start and end, and ``usagers`` (id, first and last name)."""
    if not wanted.agent_ids:
        return []
    e = agenda_events
    query = (
        select(
            e.c.item_id,
            e.c.uid,
            e.c.agent_id,
            agents.c.display_name.label("agent_name"),
            e.c.motif_id,
            motifs.c.name.label("motif_name"),
            services.c.name.label("service_name"),
            e.c.lieu_id,
            lieux.c.name.label("lieu_name"),
            e.c.status,
            e.c.starts_at,
            e.c.ends_at,
        )
        .join(agents, agents.c.id == e.c.agent_id)
        .outerjoin(motifs, motifs.c.id == e.c.motif_id)
        .outerjoin(services, services.c.id == motifs.c.service_id)
        .outerjoin(lieux, lieux.c.id == e.c.lieu_id)
        .order_by(e.c.starts_at, e.c.item_id)
    )
    found = [dict(r) for r in conn.execute(_where(query, wanted)).mappings()]
    people: dict[int, list[dict]] = {}
    named = (
        select(rdv_usagers.c.item_id, usagers.c.id, usagers.c.first_name, usagers.c.last_name)
        .join(e, e.c.item_id == rdv_usagers.c.item_id)
        .join(usagers, usagers.c.id == rdv_usagers.c.usager_id)
        .order_by(rdv_usagers.c.item_id, usagers.c.id)
    )
    # The same filter again rather than a list of ids: one query whatever the size.
    for item_id, usager_id, first_name, last_name in conn.execute(_where(named, wanted)):
        people.setdefault(item_id, []).append(
            {"id": usager_id, "first_name": first_name, "last_name": last_name}
        )
    for row in found:
        row["usagers"] = people.get(row["item_id"], [])
    return found


def counted(conn: Connection, wanted: RdvFilter) -> list[tuple[int | None, str, int]]:
    """(motif id, status, start) of each RDV: what the statistics count."""
    if not wanted.agent_ids:
        return []
    e = agenda_events
    query = _where(select(e.c.motif_id, e.c.status, e.c.starts_at), wanted)
    return [(r.motif_id, r.status or "unknown", r.starts_at) for r in conn.execute(query)]


def usager_rdvs(
    conn: Connection, organisation_id: int, usager_id: int, agent_ids: Sequence[int]
) -> list[dict]:
    """The usager's RDVs in these agents' agendas of the organisation, by start."""
    if not agent_ids:
        return []
    e = agenda_events
    query = (
        select(
            e.c.uid, e.c.agent_id, e.c.motif_id, e.c.lieu_id, e.c.status, e.c.starts_at, e.c.ends_at
        )
        .join(rdv_usagers, rdv_usagers.c.item_id == e.c.item_id)
        .where(
            rdv_usagers.c.usager_id == usager_id,
            e.c.organisation_id == organisation_id,
            e.c.kind == "rdv",
            e.c.agent_id.in_(list(agent_ids)),
        )
        .order_by(e.c.starts_at, e.c.item_id)
    )
    return [dict(r) for r in conn.execute(query).mappings()]


def coming_rdvs(conn: Connection, agent_id: int, now: int, cancelled: Collection[str]) -> int:
    """How many RDVs of the agent start from ``now`` without a cancelled status."""
    e = agenda_events
    query = select(func.count()).where(
        e.c.agent_id == agent_id,
        e.c.kind == "rdv",
        e.c.starts_at >= now,
        e.c.status.not_in(list(cancelled)),
    )
    return conn.execute(query).scalar_one()
