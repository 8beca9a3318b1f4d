"""Repository of webhook deliveries and their attempts (the delivery log).

``dispatch`` turns pending outbox events into one delivery per subscribed,
enabled endpoint of the event's organisation (a replay: its one endpoint).
``claim`` takes due deliveries for one worker: on PostgreSQL with ``FOR
UPDATE SKIP LOCKED``, so workers of several processes and hosts never take
the same one; on SQLite inside the one write transaction.  A claimed
delivery is pushed ``lease_ms`` ahead before the request is sent, outside
any transaction: a worker killed mid-send leaves it due again when the lease
ends (delivered at least once, never lost).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from storage.outbox import Event, announce, event_from_row
from storage.schema import (
    outbox_events,
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
)

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    attempt: int  # 1 for the first
    created_ms: int
    event: Event
    endpoint: dict[str, Any]


@dataclass(frozen=True)
class Attempt:
    at_ms: int
    duration_ms: int
    status_code: int | None
    error: str | None
    response_excerpt: str | None


def _locking(conn: Connection, query):  # type: ignore[no-untyped-def]
    if conn.dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True)
    return query


def dispatch(conn: Connection, now_ms: int, limit: int = 500) -> int:
    """Make the deliveries of up to ``limit`` pending events; how many events."""
    rows = conn.execute(
        _locking(
            conn,
            select(outbox_events)
            .where(outbox_events.c.pending.is_(True))
            .order_by(outbox_events.c.id)
            .limit(limit),
        )
    ).all()
    if not rows:
        return 0
    organisations = {r.organisation_id for r in rows}
    endpoints = conn.execute(
        select(
            webhook_endpoints.c.id,
            webhook_endpoints.c.organisation_id,
            webhook_endpoints.c.subscriptions,
        ).where(
            webhook_endpoints.c.organisation_id.in_(organisations),
            webhook_endpoints.c.enabled.is_(True),
        )
    ).all()
    subscribed = [(e.id, e.organisation_id, set(json.loads(e.subscriptions))) for e in endpoints]
    new = [
        {
            "event_id": r.id,
            "endpoint_id": endpoint_id,
            "state": PENDING,
            "next_attempt_ms": now_ms,
            "created_ms": now_ms,
        }
        for r in rows
        for endpoint_id, organisation_id, models in subscribed
        if organisation_id == r.organisation_id
        and r.model in models
        and r.endpoint_id in (None, endpoint_id)
    ]
    if new:
        conn.execute(insert(webhook_deliveries), new)
    conn.execute(
        update(outbox_events)
        .where(outbox_events.c.id.in_([r.id for r in rows]))
        .values(pending=False)
    )
    return len(rows)


def claim(conn: Connection, now_ms: int, lease_ms: int, limit: int = 50) -> list[Claimed]:
    """Take up to ``limit`` due deliveries of enabled endpoints for this worker."""
    d = webhook_deliveries
    due = conn.execute(
        _locking(
            conn,
            select(d.c.id, d.c.attempts, d.c.created_ms, d.c.event_id, d.c.endpoint_id)
            .where(d.c.state == PENDING, d.c.next_attempt_ms <= now_ms)
            .order_by(d.c.next_attempt_ms, d.c.id)
            .limit(limit),
        )
    ).all()
    if not due:
        return []
    conn.execute(
        update(d)
        .where(d.c.id.in_([r.id for r in due]))
        .values(attempts=d.c.attempts + 1, next_attempt_ms=now_ms + lease_ms)
    )
    events = {
        r.id: event_from_row(r)
        for r in conn.execute(
            select(outbox_events).where(outbox_events.c.id.in_({r.event_id for r in due}))
        )
    }
    endpoints = {
        r.id: dict(r._mapping)
        for r in conn.execute(
            select(webhook_endpoints).where(
                webhook_endpoints.c.id.in_({r.endpoint_id for r in due})
            )
        )
    }
    claimed = []
    for r in due:
        endpoint = endpoints[r.endpoint_id]
        if not endpoint["enabled"]:
            continue  # it stays pending: enabling the endpoint again sends it
        claimed.append(Claimed(r.id, r.attempts + 1, r.created_ms, events[r.event_id], endpoint))
    return claimed


@dataclass(frozen=True)
class Result:
    """One attempt and what follows: delivered, retried at ``next_attempt_ms``,
    or given up (not delivered, no next attempt)."""

    delivery_id: int
    attempt: Attempt
    delivered: bool
    next_attempt_ms: int | None


_SET_STATE = (
    update(webhook_deliveries)
    .where(webhook_deliveries.c.id == bindparam("delivery"))
    .values(
        state=bindparam("state"),
        delivered_ms=bindparam("delivered"),
        next_attempt_ms=func.coalesce(bindparam("next"), webhook_deliveries.c.next_attempt_ms),
    )
)


def record(conn: Connection, results: list[Result]) -> None:
    """Log a round's attempts and set each delivery's state, in two statements."""
    if not results:
        return
    conn.execute(
        insert(webhook_attempts),
        [{"delivery_id": r.delivery_id, **r.attempt.__dict__} for r in results],
    )
    conn.execute(
        _SET_STATE,
        [
            {
                "delivery": r.delivery_id,
                "state": DELIVERED if r.delivered else (PENDING if r.next_attempt_ms else FAILED),
                "delivered": r.attempt.at_ms if r.delivered else None,
                "next": r.next_attempt_ms,
            }
            for r in results
        ],
    )


def next_due_ms(conn: Connection) -> int | None:
    """When the earliest pending delivery is due (None: nothing pending)."""
    return conn.execute(
        select(func.min(webhook_deliveries.c.next_attempt_ms)).where(
            webhook_deliveries.c.state == PENDING
        )
    ).scalar_one_or_none()


def has_pending_events(conn: Connection) -> bool:
    query = select(outbox_events.c.id).where(outbox_events.c.pending.is_(True)).limit(1)
    return conn.execute(query).first() is not None


def disable_endpoint(conn: Connection, endpoint_id: int, reason: str) -> None:
    conn.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.id == endpoint_id)
        .values(enabled=False, disabled_reason=reason[:200])
    )


def deliveries_of(conn: Connection, endpoint_id: int, limit: int = 100) -> list[dict[str, Any]]:
    """The endpoint's latest deliveries, newest first, each with its attempts."""
    d, e = webhook_deliveries, outbox_events
    rows = conn.execute(
        select(d, e.c.model, e.c.record_id, e.c.event, e.c.sequence, e.c.reason)
        .join(e, e.c.id == d.c.event_id)
        .where(d.c.endpoint_id == endpoint_id)
        .order_by(d.c.id.desc())
        .limit(limit)
    ).all()
    found = [dict(r._mapping) for r in rows]
    attempts: dict[int, list[dict[str, Any]]] = {r["id"]: [] for r in found}
    if found:
        for a in conn.execute(
            select(webhook_attempts)
            .where(webhook_attempts.c.delivery_id.in_(list(attempts)))
            .order_by(webhook_attempts.c.id)
        ):
            attempts[a.delivery_id].append(
                {k: v for k, v in a._mapping.items() if k not in ("id", "delivery_id")}
            )
    return [{**r, "attempts_log": attempts[r["id"]]} for r in found]


def redeliver(
    conn: Connection, endpoint_id: int, now_ms: int, delivery_id: int | None = None
) -> int:
    """Send again one delivery of the endpoint (any state), or every failed
    one; how many were put back."""
    d = webhook_deliveries
    where = [d.c.endpoint_id == endpoint_id]
    where.append(d.c.id == delivery_id if delivery_id is not None else d.c.state == FAILED)
    count = conn.execute(
        update(d)
        .where(*where)
        .values(state=PENDING, next_attempt_ms=now_ms, created_ms=now_ms, delivered_ms=None)
    ).rowcount
    if count:
        announce(conn)
    return count
