"""Repository of Webcal feeds: tokens, and the rows a feed is built from.

Only a token's SHA-256 is stored: the token is shown to its agent once, when
made, and a feed request is matched on the digest (the database never sees
nor compares the secret, so neither a leaked row nor the lookup's timing gives
it away).  Everything a feed says comes from the agenda index and the motif,
lieu and usager postcode/city columns, never from an item's text, so a feed
cannot carry what a client wrote into an event.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Connection, Select, and_, bindparam, select, update

from storage.schema import (
    agenda_events,
    agenda_occurrences,
    agents,
    collections,
    items,
    lieux,
    motifs,
    usagers,
)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# A feed is polled by every subscribed client, mostly for a 304: the
# statements of that path are built once (building one costs more than
# running it on SQLite).
_AGENT_BY_TOKEN = select(
    agents.c.id,
    agents.c.login,
    agents.c.display_name,
    agents.c.feed_with_availability,
).where(agents.c.feed_token_hash == bindparam("digest"))
_AGENDAS = (
    select(
        collections.c.path,
        collections.c.sync_id,
        collections.c.revision,
        collections.c.modified_at,
    )
    .where(collections.c.path.in_(bindparam("paths", expanding=True)))
    .order_by(collections.c.path)
)
_MOTIFS = (
    select(motifs.c.id, motifs.c.name, motifs.c.location_type)
    .where(motifs.c.organisation_id.in_(bindparam("orgs", expanding=True)))
    .order_by(motifs.c.id)
)
_LIEUX = (
    select(lieux.c.id, lieux.c.name, lieux.c.address)
    .where(lieux.c.organisation_id.in_(bindparam("orgs", expanding=True)))
    .order_by(lieux.c.id)
)


def agent_by_token_hash(conn: Connection, digest: str) -> dict | None:
    row = conn.execute(_AGENT_BY_TOKEN, {"digest": digest}).mappings().first()
    return dict(row) if row else None


def set_token(conn: Connection, agent_id: int, token: str) -> None:
    conn.execute(
        update(agents).where(agents.c.id == agent_id).values(feed_token_hash=token_hash(token))
    )


def has_token(conn: Connection, agent_id: int) -> bool:
    digest = conn.execute(
        select(agents.c.feed_token_hash).where(agents.c.id == agent_id)
    ).scalar_one_or_none()
    return digest is not None


def home_of(conn: Connection, usager_id: int) -> tuple[str | None, str | None]:
    """The postcode and city of a usager (all a home visit's LOCATION says);
    the other columns of the row are not even read."""
    row = conn.execute(
        select(usagers.c.postcode, usagers.c.city).where(usagers.c.id == usager_id)
    ).first()
    return (row.postcode, row.city) if row else (None, None)


@dataclass(frozen=True)
class FeedRdv:
    public_id: str
    starts_at: int
    ends_at: int
    sequence: int
    modified_at: int
    motif_id: int | None
    lieu_id: int | None
    organisation_id: int | None
    item_id: int


def _rdv_rows() -> Select:
    e = agenda_events
    return (
        select(
            e.c.public_id, e.c.starts_at, e.c.ends_at, e.c.sequence, items.c.modified_at,
            e.c.motif_id, e.c.lieu_id, e.c.organisation_id, e.c.item_id,
        )
        .join(items, items.c.id == e.c.item_id)
        .where(e.c.kind == "rdv", e.c.status.not_in(("excused", "revoked")))
    )  # fmt: skip


def rdvs(conn: Connection, agent_id: int, start: int, end: int) -> list[FeedRdv]:
    """The agent's RDVs (all organisations) starting in [start, end), not cancelled."""
    e = agenda_events
    query = (
        _rdv_rows()
        .where(e.c.agent_id == agent_id, e.c.starts_at >= start, e.c.starts_at < end)
        .order_by(e.c.starts_at, e.c.item_id)
    )
    return [FeedRdv(*row) for row in conn.execute(query)]


def organisations_of_rdvs(
    conn: Connection, agent_id: int, public_ids: Collection[str]
) -> dict[str, int | None]:
    """Of these public ids, the agent's RDVs not cancelled (any date):
    public id -> organisation."""
    if not public_ids:
        return {}
    e = agenda_events
    query = _rdv_rows().where(e.c.agent_id == agent_id, e.c.public_id.in_(list(public_ids)))
    return {row.public_id: row.organisation_id for row in conn.execute(query)}


def live_rdvs(conn: Connection, item_ids: list[int]) -> dict[int, tuple[int, FeedRdv]]:
    """Of these items, those that are RDVs not cancelled: item -> (agent, row)."""
    e = agenda_events
    query = _rdv_rows().add_columns(e.c.agent_id).where(e.c.item_id.in_(item_ids))
    return {row.item_id: (row.agent_id, FeedRdv(*row[:-1])) for row in conn.execute(query)}


def availability(
    conn: Connection, agent_id: int, start: int, end: int
) -> list[tuple[str, str, int, int, int]]:
    """(kind, public id, start, end, modified_at) of the agent's absences and
    plage occurrences overlapping [start, end), pieces of one occurrence joined."""
    o, e = agenda_occurrences, agenda_events
    query = (
        select(e.c.kind, e.c.public_id, o.c.r_start, o.c.r_end, items.c.modified_at)
        .join(e, e.c.item_id == o.c.item_id)
        .join(items, items.c.id == o.c.item_id)
        .where(
            o.c.agent_id == agent_id,
            o.c.kind.in_(("absence", "plage")),
            and_(o.c.r_end > start, o.c.r_start < end),
        )
        .order_by(e.c.public_id, o.c.r_start)
    )
    joined: list[tuple[str, str, int, int, int]] = []
    for kind, uid, r_start, r_end, modified in conn.execute(query):
        if joined and joined[-1][1] == uid and joined[-1][3] == r_start:
            previous = joined[-1]
            joined[-1] = (kind, uid, previous[2], r_end, modified)
        else:
            joined.append((kind, uid, r_start, r_end, modified))
    return joined


def version(conn: Connection, agent: dict, organisation_ids: list[int]) -> tuple[str, int]:
    """What a feed depends on, cheap to read: the revisions of the agent's
    three agendas and the motifs and lieux of its organisations.  Equal
    versions (for the same window) mean equal feeds.  Also the last change
    of those agendas (for Last-Modified)."""
    login = agent["login"]
    paths = [f"{login}/rdv", f"{login}/plages", f"{login}/indisponibilites"]
    agendas = conn.execute(_AGENDAS, {"paths": paths}).all()
    motif_rows = conn.execute(_MOTIFS, {"orgs": organisation_ids}).all()
    lieu_rows = conn.execute(_LIEUX, {"orgs": organisation_ids}).all()
    state = [
        [list(r) for r in agendas],
        [list(r) for r in motif_rows],
        [list(r) for r in lieu_rows],
        bool(agent["feed_with_availability"]),
    ]
    last = max((r.modified_at for r in agendas), default=0)
    return hashlib.sha256(json.dumps(state).encode()).hexdigest(), last
