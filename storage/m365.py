"""Repository of the Microsoft 365 push: connections, links, cursor, sync log.

The push is driven by state, not by replaying events: ``collect`` reads the
outbox's RDV events from where it stopped and marks each RDV's *link* dirty;
a worker ``claim``s dirty links (leased, so another worker process leaves
them alone until the lease ends), compares what the RDV is now with what it
last pushed (a digest), calls Graph only for a difference, and ``finish``es
the link.  A change told while a sync was on the wire bumps the link's
``version``, so finishing leaves it dirty and it is looked at again.

On PostgreSQL outbox ids are taken before commit, so a younger transaction
may commit a higher id first: ``collect`` does not move its cursor past a
missing id younger than ``GAP_MS`` (it may still commit), and rereading an
event only marks a link dirty again, which costs a comparison, not a call.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, case, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from storage.database import skip_locked
from storage.outbox import announce
from storage.schema import (
    agent_roles,
    agents,
    m365_connections,
    m365_cursor,
    m365_delegations,
    m365_links,
    m365_sync_log,
    organisations,
    outbox_events,
)

OK, BROKEN = "ok", "broken"
CURSOR = "push"
GAP_MS = 10_000


@dataclass(frozen=True)
class Link:
    item_id: int
    agent_id: int
    organisation_id: int
    mailbox: str | None
    graph_id: str | None
    pushed: str | None
    generation: int
    version: int
    attempts: int


@dataclass(frozen=True)
class LogEntry:
    agent_id: int
    item_id: int | None
    at_ms: int
    operation: str
    status: int | None
    duration_ms: int
    request_id: str | None
    error: str | None


# -- connections ------------------------------------------------------------------


def set_connection(
    conn: Connection,
    organisation_id: int,
    tenant_id: str,
    client_id: str,
    secret: str,
    now: int,
    certificate: str | None = None,
) -> None:
    """Create or replace the organisation's connection (``secret`` already
    encrypted: the client secret, or the private key of ``certificate``); it
    starts ok, and the links waiting on a broken one go again (the commit
    wakes the workers as an outbox event would)."""
    values = {
        "tenant_id": tenant_id,
        "client_id": client_id,
        "secret": secret,
        "certificate": certificate,
        "state": OK,
        "broken_reason": None,
        "updated_ms": now,
    }
    found = conn.execute(
        select(m365_connections.c.organisation_id).where(
            m365_connections.c.organisation_id == organisation_id
        )
    ).first()
    if found is None:
        conn.execute(insert(m365_connections).values(organisation_id=organisation_id, **values))
    else:
        conn.execute(
            update(m365_connections)
            .where(m365_connections.c.organisation_id == organisation_id)
            .values(**values)
        )
    _due_again(conn, m365_links.c.organisation_id == organisation_id, now)


def connection(conn: Connection, organisation_id: int) -> dict[str, Any] | None:
    row = conn.execute(
        select(m365_connections).where(m365_connections.c.organisation_id == organisation_id)
    ).first()
    return dict(row._mapping) if row else None


def delete_connection(conn: Connection, organisation_id: int) -> bool:
    return bool(
        conn.execute(
            delete(m365_connections).where(m365_connections.c.organisation_id == organisation_id)
        ).rowcount
    )


def mark_broken(conn: Connection, organisation_id: int, reason: str, now: int) -> None:
    conn.execute(
        update(m365_connections)
        .where(m365_connections.c.organisation_id == organisation_id)
        .values(state=BROKEN, broken_reason=reason[:200], updated_ms=now)
    )


# -- agents' delegated connections ---------------------------------------------------


def set_delegation(
    conn: Connection, agent_id: int, account: str, refresh_token: str, now: int
) -> None:
    """Create or replace the agent's own connection (``refresh_token``
    sealed); it starts ok, and every link of the agent is looked at again
    (its events move to the account signed in, what waited goes)."""
    values = {
        "account": account.strip().lower(),
        "refresh_token": refresh_token,
        "state": OK,
        "broken_reason": None,
        "connected_ms": now,
        "updated_ms": now,
    }
    d = m365_delegations.c
    if conn.execute(select(d.agent_id).where(d.agent_id == agent_id)).first() is None:
        conn.execute(insert(m365_delegations).values(agent_id=agent_id, **values))
    else:
        conn.execute(update(m365_delegations).where(d.agent_id == agent_id).values(**values))
    _look_again(conn, agent_id, now)


def _look_again(conn: Connection, agent_id: int, now: int) -> None:
    """Every link of the agent dirty and due: its mailbox changed."""
    link = m365_links.c
    conn.execute(
        update(m365_links)
        .where(link.agent_id == agent_id)
        .values(dirty=True, version=link.version + 1, due_ms=now, attempts=0)
    )
    announce(conn)


def _due_again(conn: Connection, which: Any, now: int) -> None:
    conn.execute(
        update(m365_links).where(which, m365_links.c.dirty.is_(True)).values(due_ms=now, attempts=0)
    )
    announce(conn)  # the workers wake at commit to push what waited


def delegation(conn: Connection, agent_id: int) -> dict[str, Any] | None:
    row = conn.execute(
        select(m365_delegations).where(m365_delegations.c.agent_id == agent_id)
    ).first()
    return dict(row._mapping) if row else None


def delegation_of_account(conn: Connection, account: str) -> dict[str, Any] | None:
    """An ok delegation signed in as this mailbox (to delete an event left
    there after the RDV went to another agent)."""
    d = m365_delegations.c
    row = conn.execute(
        select(m365_delegations)
        .where(d.account == account, d.state == OK)
        .order_by(d.agent_id)
        .limit(1)
    ).first()
    return dict(row._mapping) if row else None


def renew_delegation(conn: Connection, agent_id: int, was: str, sealed: str, now: int) -> bool:
    """Keep the refresh token the platform gave in exchange for ``was``,
    unless the agent disconnected or connected again meanwhile."""
    d = m365_delegations.c
    return bool(
        conn.execute(
            update(m365_delegations)
            .where(d.agent_id == agent_id, d.refresh_token == was)
            .values(refresh_token=sealed, updated_ms=now)
        ).rowcount
    )


def break_delegation(
    conn: Connection, agent_id: int, connected_ms: int, reason: str, now: int
) -> None:
    """The grant the agent made at ``connected_ms`` is expired or revoked:
    its token is useless, so it is deleted, and the agent's links wait until
    it connects again (a grant made since is left alone)."""
    d = m365_delegations.c
    conn.execute(
        update(m365_delegations)
        .where(d.agent_id == agent_id, d.connected_ms == connected_ms)
        .values(state=BROKEN, broken_reason=reason[:200], refresh_token=None, updated_ms=now)
    )


def delete_delegation(conn: Connection, agent_id: int, now: int) -> bool:
    """Disconnect: the stored tokens go; the agent's pushes fall back to the
    organisation's connection, if any (its events move there)."""
    gone = bool(
        conn.execute(
            delete(m365_delegations).where(m365_delegations.c.agent_id == agent_id)
        ).rowcount
    )
    if gone:
        _look_again(conn, agent_id, now)
    return gone


def _pushable() -> Any:
    """Links whose agent has an ok delegation, or none and an organisation
    whose connection is ok (to be used with the joins of ``_with_routes``)."""
    c, d = m365_connections.c, m365_delegations.c
    return or_(d.state == OK, and_(d.agent_id.is_(None), c.state == OK))


def _with_routes(query: Any) -> Any:
    link = m365_links.c
    return query.outerjoin(
        m365_connections, m365_connections.c.organisation_id == link.organisation_id
    ).outerjoin(m365_delegations, m365_delegations.c.agent_id == link.agent_id)


# -- from the outbox to links -------------------------------------------------------


def _upsert_dirty(conn: Connection, rows: list[dict[str, Any]]) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(m365_links).values(rows)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[m365_links.c.item_id],
            set_={
                "agent_id": statement.excluded.agent_id,
                "organisation_id": statement.excluded.organisation_id,
                "dirty": True,
                "version": m365_links.c.version + 1,
                "due_ms": statement.excluded.due_ms,
                "attempts": 0,
            },
        )
    )


def collect(conn: Connection, now: int, seen: Collection[int] = (), limit: int = 500) -> list[int]:
    """Mark dirty the links of the RDVs the outbox told of since the cursor
    (and every link of an agent whose email changed or who is gone), leaving
    out the events in ``seen`` (marked by an earlier call while a gap held
    the cursor back); the ids of the events read that are still past the
    cursor (the caller's next ``seen``)."""
    cursor = conn.execute(
        select(m365_cursor.c.last_event_id).where(m365_cursor.c.name == CURSOR)
    ).scalar_one_or_none()
    if cursor is None:
        conn.execute(insert(m365_cursor).values(name=CURSOR, last_event_id=0))
        cursor = 0
    e = outbox_events
    rows = conn.execute(
        select(
            e.c.id, e.c.created_ms, e.c.organisation_id, e.c.model, e.c.record_id, e.c.data,
            e.c.reason, e.c.changes,
        )
        .where(e.c.id > cursor)
        .order_by(e.c.id)
        .limit(limit)
    ).all()  # fmt: skip
    marked = set(seen)
    advanced = cursor
    for row in rows:
        if row.id != advanced + 1 and row.created_ms > now - GAP_MS:
            break  # a lower id may still commit: read from here again next time
        advanced = row.id
    dirty: dict[int, dict[str, Any]] = {}
    moved_agents: set[int] = set()
    for row in rows:
        if row.reason is not None or row.id in marked:
            continue
        if row.model == "agent" and {"email", "destroyed"} & set(json.loads(row.changes)):
            moved_agents.add(row.record_id)  # its events go to another mailbox, or away
        if row.model != "rdv":
            continue
        agent_ids = json.loads(row.data).get("agent_ids") or [0]
        dirty[row.record_id] = {
            "item_id": row.record_id,
            "agent_id": agent_ids[0],
            "organisation_id": row.organisation_id,
            "due_ms": now,
            "dirty": True,
        }
    if dirty:
        _upsert_dirty(conn, list(dirty.values()))
    if moved_agents:
        conn.execute(
            update(m365_links)
            .where(m365_links.c.agent_id.in_(moved_agents))
            .values(dirty=True, version=m365_links.c.version + 1, due_ms=now, attempts=0)
        )
    if advanced != cursor:
        conn.execute(
            update(m365_cursor).where(m365_cursor.c.name == CURSOR).values(last_event_id=advanced)
        )
    return [row.id for row in rows if row.id > advanced]


def mark_dirty(
    conn: Connection,
    found: Iterable[tuple[int, int, int]],
    now: int,
    *,
    recreate_in: str | None = None,
) -> None:
    """Have the push look at these (item, agent, organisation) again;
    ``recreate_in``: their event is not in this mailbox, make a new one (a
    link whose event is in another mailbox keeps it: the sync deletes it there).
    A link with no event known keeps its generation: its create may be on the
    wire (a reconciliation listed the mailbox before Graph made it), and a
    retry must carry the same transactionId."""
    rows = [
        {"item_id": i, "agent_id": a, "organisation_id": o, "due_ms": now, "dirty": True}
        for i, a, o in found
    ]
    if not rows:
        return
    _upsert_dirty(conn, rows)
    if recreate_in is not None:
        link = m365_links.c
        conn.execute(
            update(m365_links)
            .where(
                link.item_id.in_([r["item_id"] for r in rows]),
                link.mailbox == recreate_in,
                link.graph_id.is_not(None),
            )
            .values(graph_id=None, pushed=None, generation=link.generation + 1)
        )


def adopt(conn: Connection, item_id: int, graph_id: str, pushed: str, mailbox: str) -> None:
    """What reconciliation found in the mailbox for this RDV's link: the
    digest of the event as it is there (so a hand edit reads as a difference)."""
    conn.execute(
        update(m365_links)
        .where(m365_links.c.item_id == item_id)
        .values(graph_id=graph_id, pushed=pushed, mailbox=mailbox)
    )


def claim(
    conn: Connection, now: int, lease_ms: int, limit: int, busy: Collection[int] = ()
) -> list[Link]:
    """Up to ``limit`` due dirty links of organisations whose connection is
    ok, leaving out the items in ``busy``; each pushed a lease ahead."""
    link = m365_links
    query = (
        _with_routes(select(link).select_from(link))
        .where(link.c.dirty.is_(True), link.c.due_ms <= now, _pushable())
        .order_by(link.c.due_ms, link.c.item_id)
        .limit(limit)
    )
    if busy:
        query = query.where(link.c.item_id.not_in(list(busy)))
    rows = conn.execute(skip_locked(conn, query, of=link)).all()
    if not rows:
        return []
    conn.execute(
        update(link)
        .where(link.c.item_id.in_([r.item_id for r in rows]))
        .values(due_ms=now + lease_ms)
    )
    return [
        Link(
            r.item_id, r.agent_id, r.organisation_id, r.mailbox, r.graph_id, r.pushed,
            r.generation, r.version, r.attempts,
        )
        for r in rows
    ]  # fmt: skip


def next_due_ms(conn: Connection) -> int | None:
    link = m365_links
    return conn.execute(
        _with_routes(select(func.min(link.c.due_ms)).select_from(link)).where(
            link.c.dirty.is_(True), _pushable()
        )
    ).scalar_one_or_none()


def finish(
    conn: Connection,
    link: Link,
    *,
    mailbox: str | None,
    graph_id: str | None,
    pushed: str | None,
    generation: int,
    retry_at_ms: int | None,
    now: int,
) -> None:
    """Keep where the RDV's event now is.  Done (``retry_at_ms`` None): the
    link is clean unless a change came meanwhile, and forgotten when there
    is no event and nothing to push; else it is due again at ``retry_at_ms``."""
    row = m365_links.c
    if retry_at_ms is None and graph_id is None and pushed is None:
        conn.execute(
            delete(m365_links).where(row.item_id == link.item_id, row.version == link.version)
        )
    values: dict[str, Any] = {
        "mailbox": mailbox,
        "graph_id": graph_id,
        "pushed": pushed,
        "generation": generation,
    }
    if retry_at_ms is None:
        values.update(dirty=case((row.version == link.version, False), else_=True), attempts=0)
        values["due_ms"] = now
    else:
        values.update(attempts=row.attempts + 1, due_ms=retry_at_ms)
    conn.execute(update(m365_links).where(row.item_id == link.item_id).values(**values))


def write_log(conn: Connection, entries: list[LogEntry]) -> None:
    if entries:
        conn.execute(insert(m365_sync_log), [e.__dict__ for e in entries])


def log_of(conn: Connection, agent_id: int, limit: int = 100) -> list[dict[str, Any]]:
    """The agent's latest Graph calls, newest first."""
    rows = conn.execute(
        select(m365_sync_log)
        .where(m365_sync_log.c.agent_id == agent_id)
        .order_by(m365_sync_log.c.id.desc())
        .limit(limit)
    )
    return [{k: v for k, v in r._mapping.items() if k != "agent_id"} for r in rows]


def purge_log(conn: Connection, before_ms: int, limit: int = 500) -> int:
    old = list(
        conn.execute(
            select(m365_sync_log.c.id).where(m365_sync_log.c.at_ms < before_ms).limit(limit)
        ).scalars()
    )
    if old:
        conn.execute(delete(m365_sync_log).where(m365_sync_log.c.id.in_(old)))
    return len(old)


# -- what the push reads about agents ----------------------------------------------------


def mailbox_and_zone(
    conn: Connection, agent_id: int, organisation_id: int
) -> tuple[str | None, str]:
    """The agent's mailbox (its email; None: nothing can be pushed, nor to an
    intervenant) and the organisation's time zone."""
    email = conn.execute(select(agents.c.email).where(agents.c.id == agent_id)).scalar_one_or_none()
    role = conn.execute(
        select(agent_roles.c.role).where(
            agent_roles.c.agent_id == agent_id, agent_roles.c.organisation_id == organisation_id
        )
    ).scalar_one_or_none()
    if role == "intervenant":  # an agenda without a login receives nothing
        email = None
    zone = conn.execute(
        select(organisations.c.time_zone).where(organisations.c.id == organisation_id)
    ).scalar_one_or_none()
    return (email.strip().lower() if email else None), zone or "Europe/Paris"


def connected_agents(conn: Connection) -> list[tuple[int, int]]:
    """(agent, organisation) of every agent with an ok delegation, or with
    none, an email and an organisation whose connection is ok: whose
    mailboxes reconciliation looks at."""
    c, d = m365_connections.c, m365_delegations.c
    rows = conn.execute(
        select(agent_roles.c.agent_id, agent_roles.c.organisation_id)
        .join(agents, agents.c.id == agent_roles.c.agent_id)
        .outerjoin(m365_connections, c.organisation_id == agent_roles.c.organisation_id)
        .outerjoin(m365_delegations, d.agent_id == agent_roles.c.agent_id)
        .where(
            or_(
                d.state == OK,
                and_(d.agent_id.is_(None), c.state == OK, agents.c.email.is_not(None)),
            ),
            agent_roles.c.role != "intervenant",
        )
        .order_by(agent_roles.c.agent_id)
    )
    return [(r.agent_id, r.organisation_id) for r in rows]
