"""Repository of webhook deliveries and their attempts (the delivery log).

``dispatch`` turns pending outbox events into one delivery per subscribed
endpoint of the event's organisation (a replay: its one endpoint), enabled
or not.  ``claim`` takes due deliveries of enabled endpoints for one worker:
on PostgreSQL with ``FOR UPDATE SKIP LOCKED``, so workers of several
processes and hosts never take the same one; on SQLite inside the one write
transaction.  A claimed delivery is pushed ``lease_ms`` ahead before the
request is sent, outside any transaction: a worker killed mid-send leaves it
due again when the lease ends (delivered at least once, never lost).  What
the attempt leads to is recorded only while the lease is still the
claimer's: a delivery redelivered meanwhile, or claimed again by another
worker after the lease ran out, keeps what was done to it since.

One record's deliveries to one endpoint go one at a time, in event order,
whichever worker claims them: only the head of each (endpoint, record)
queue is claimable, that is a pending delivery with no pending (due,
waiting for a retry, or leased) delivery of an earlier event of that record
for that endpoint.  A record's later events thus wait behind one that fails
until it is delivered or given up; other records go on.  Dispatch is
serialized among workers (a PostgreSQL advisory lock) so that one record's
deliveries are written in event order.  An endpoint that answered with
``Retry-After`` is not claimed before that time (``not_before_ms``).

A disabled endpoint (by a 410 or by an admin) is never claimed: what it is
sent while disabled waits, pending, and goes out in order once it is enabled
again.  Waiting has the bound a failing receiver has (the retry policy's
``give_up_after_ms``): past it ``purge`` gives those deliveries up
(``failed``; ``redeliver_failed`` or an initial sync brings them back).
``purge`` also deletes, a small batch at a time, delivered deliveries and
failed ones past their retention, and the outbox events no delivery needs.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.sql.elements import Case, ColumnElement
from sqlalchemy.sql.selectable import Join

from storage.database import skip_locked
from storage.outbox import Event, announce, event_from_row, key_of
from storage.schema import (
    outbox_events,
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
)

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
# The PostgreSQL advisory lock one dispatching worker holds at a time.
DISPATCH_LOCK = 0x63616C5F6F7574  # "cal_out"


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    attempt: int  # 1 for the first
    created_ms: int
    event: Event
    endpoint: dict[str, Any]
    leased_until_ms: int  # the claim's lease: what ``record`` checks is still ours


@dataclass(frozen=True)
class Attempt:
    at_ms: int
    duration_ms: int
    status_code: int | None
    error: str | None
    response_excerpt: str | None


def dispatch(conn: Connection, now_ms: int, limit: int = 500) -> int:
    """Make the deliveries of up to ``limit`` pending events; how many events.
    A disabled endpoint gets its deliveries too: they wait for it.  On
    PostgreSQL one worker dispatches at a time (the others skip it this
    turn): two dispatching side by side could commit a record's later event's
    delivery before its earlier one's, which a claim would take as the head."""
    if (
        conn.dialect.name == "postgresql"
        and not conn.execute(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": DISPATCH_LOCK}
        ).scalar_one()
    ):
        return 0
    rows = conn.execute(
        skip_locked(
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
        ).where(webhook_endpoints.c.organisation_id.in_(organisations))
    ).all()
    subscribed = [(e.id, e.organisation_id, set(json.loads(e.subscriptions))) for e in endpoints]
    new = [
        {
            "event_id": r.id,
            "endpoint_id": endpoint_id,
            "state": PENDING,
            "next_attempt_ms": now_ms,
            "created_ms": now_ms,
            "record_key": key_of(r.model, r.record_id),
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


def _waiting(busy: Collection[int]) -> tuple[list[ColumnElement[bool]], Join]:
    """The conditions and join of the deliveries ``claim`` may take, due or
    not: pending, of an enabled endpoint not in ``busy``, and the head of
    their (endpoint, record) queue (by the index on endpoint, record, event)."""
    d, e = webhook_deliveries, webhook_endpoints
    earlier = webhook_deliveries.alias("earlier")
    where = [
        d.c.state == PENDING,
        e.c.enabled.is_(True),
        ~exists().where(
            earlier.c.endpoint_id == d.c.endpoint_id,
            earlier.c.record_key == d.c.record_key,
            earlier.c.event_id < d.c.event_id,
            earlier.c.state == PENDING,
        ),
    ]
    if busy:
        where.append(d.c.endpoint_id.not_in(list(busy)))
    return where, d.join(e, e.c.id == d.c.endpoint_id)


def _due_ms() -> Case[int]:
    """When a delivery is due: its own time, or its endpoint's Retry-After if later."""
    d, e = webhook_deliveries, webhook_endpoints
    return case(
        (e.c.not_before_ms > d.c.next_attempt_ms, e.c.not_before_ms), else_=d.c.next_attempt_ms
    )


def claim(
    conn: Connection, now_ms: int, lease_ms: int, limit: int = 50, busy: Collection[int] = ()
) -> list[Claimed]:
    """Take up to ``limit`` due deliveries of enabled endpoints for this
    worker, leaving out the endpoints in ``busy`` (this worker is still
    sending to them: their next deliveries wait, so a slow one does not hold
    the claims of the others).  Only the head of each record's queue is
    taken, so a claim holds at most one delivery per (endpoint, record)."""
    d, e = webhook_deliveries, webhook_endpoints
    where, joined = _waiting(busy)
    due = conn.execute(
        skip_locked(
            conn,
            select(d.c.id, d.c.attempts, d.c.created_ms, d.c.event_id, d.c.endpoint_id)
            .select_from(joined)
            .where(
                *where,
                d.c.next_attempt_ms <= now_ms,
                or_(e.c.not_before_ms.is_(None), e.c.not_before_ms <= now_ms),
            )
            .order_by(d.c.next_attempt_ms, d.c.id)
            .limit(limit),
            of=d,
        )
    ).all()
    if not due:
        return []
    leased_until = now_ms + lease_ms
    conn.execute(
        update(d)
        .where(d.c.id.in_([r.id for r in due]))
        .values(attempts=d.c.attempts + 1, next_attempt_ms=leased_until)
    )
    events = {
        r.id: event_from_row(r)
        for r in conn.execute(
            select(outbox_events).where(outbox_events.c.id.in_({r.event_id for r in due}))
        )
    }
    endpoints = {
        r.id: dict(r._mapping)
        for r in conn.execute(select(e).where(e.c.id.in_({r.endpoint_id for r in due})))
    }
    return [
        Claimed(
            r.id,
            r.attempts + 1,
            r.created_ms,
            events[r.event_id],
            endpoints[r.endpoint_id],
            leased_until,
        )
        for r in due
    ]


@dataclass(frozen=True)
class Result:
    """One attempt and what follows: delivered, retried at ``next_attempt_ms``,
    or given up (not delivered, no next attempt).  ``leased_until_ms`` is the
    claim's lease the attempt was made under."""

    delivery_id: int
    leased_until_ms: int
    attempt: Attempt
    delivered: bool
    next_attempt_ms: int | None


_SET_STATE = (
    update(webhook_deliveries)
    .where(
        webhook_deliveries.c.id == bindparam("delivery"),
        webhook_deliveries.c.state == PENDING,
        webhook_deliveries.c.next_attempt_ms == bindparam("leased_until"),
    )
    .values(
        state=bindparam("state"),
        delivered_ms=bindparam("delivered"),
        next_attempt_ms=bindparam("next"),
    )
)


def record(conn: Connection, results: list[Result]) -> None:
    """Log a round's attempts and set each delivery's state.

    A delivery given up keeps the time of its last attempt as its
    ``next_attempt_ms`` (what its retention counts from).  Its state is set
    only while the claim's lease is still on it: redelivered while in
    flight, it is sent again rather than marked delivered by the answer to
    the earlier request.  The attempts of deliveries deleted meanwhile (their
    endpoint was) are dropped: the rows still there are locked first, so an
    endpoint deleted concurrently waits for this or is seen gone."""
    if not results:
        return
    d = webhook_deliveries
    ids = [r.delivery_id for r in results]
    query = select(d.c.id).where(d.c.id.in_(ids))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    present = set(conn.execute(query).scalars())
    kept = [r for r in results if r.delivery_id in present]
    if not kept:
        return
    conn.execute(
        insert(webhook_attempts),
        [{"delivery_id": r.delivery_id, **r.attempt.__dict__} for r in kept],
    )
    conn.execute(
        _SET_STATE,
        [
            {
                "delivery": r.delivery_id,
                "leased_until": r.leased_until_ms,
                "state": DELIVERED if r.delivered else (PENDING if r.next_attempt_ms else FAILED),
                "delivered": r.attempt.at_ms if r.delivered else None,
                "next": r.next_attempt_ms or r.attempt.at_ms,
            }
            for r in kept
        ],
    )


def hold_endpoint(conn: Connection, endpoint_id: int, until_ms: int) -> None:
    """Claim none of the endpoint's deliveries before ``until_ms`` (its
    receiver answered with Retry-After); a later hold already set stays."""
    e = webhook_endpoints
    conn.execute(
        update(e)
        .where(
            e.c.id == endpoint_id,
            or_(e.c.not_before_ms.is_(None), e.c.not_before_ms < until_ms),
        )
        .values(not_before_ms=until_ms)
    )


def next_due_ms(conn: Connection, busy: Collection[int] = ()) -> int | None:
    """When the earliest delivery ``claim`` could take is due (None: nothing
    pending for an enabled endpoint outside ``busy``)."""
    where, joined = _waiting(busy)
    return conn.execute(
        select(func.min(_due_ms())).select_from(joined).where(*where)
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


@dataclass(frozen=True)
class Retention:
    """How long finished deliveries are kept, and how long a disabled
    endpoint's deliveries wait for it (both counted in milliseconds)."""

    delivered_ms: int
    failed_ms: int
    waiting_ms: int


def purge(conn: Connection, now_ms: int, keep: Retention, limit: int = 500) -> int:
    """One small batch of clean-up; how many rows it changed or deleted (the
    caller comes back soon while that is ``limit`` or more).

    Gives up the deliveries a disabled endpoint has left waiting longer than
    ``keep.waiting_ms``; deletes delivered deliveries older than
    ``keep.delivered_ms`` and failed ones given up longer than
    ``keep.failed_ms`` ago, with their attempts; deletes the outbox events
    handed out longer than ``keep.delivered_ms`` ago that no delivery needs."""
    d, e = webhook_deliveries, webhook_endpoints
    stale = (
        select(d.c.id)
        .select_from(d.join(e, e.c.id == d.c.endpoint_id))
        .where(
            d.c.state == PENDING, e.c.enabled.is_(False), d.c.created_ms < now_ms - keep.waiting_ms
        )
    )
    given_up = conn.execute(
        update(d)
        .where(d.c.id.in_(stale.limit(limit).scalar_subquery()))
        .values(state=FAILED, next_attempt_ms=now_ms)
    ).rowcount
    done = list(
        conn.execute(
            select(d.c.id)
            .where(
                or_(
                    (d.c.state == DELIVERED) & (d.c.delivered_ms < now_ms - keep.delivered_ms),
                    (d.c.state == FAILED) & (d.c.next_attempt_ms < now_ms - keep.failed_ms),
                )
            )
            .limit(limit)
        ).scalars()
    )
    if done:
        conn.execute(delete(webhook_attempts).where(webhook_attempts.c.delivery_id.in_(done)))
        conn.execute(delete(d).where(d.c.id.in_(done)))
    o = outbox_events
    unneeded = list(
        conn.execute(
            select(o.c.id)
            .where(
                o.c.pending.is_(False),
                o.c.created_ms < now_ms - keep.delivered_ms,
                ~exists().where(d.c.event_id == o.c.id),
            )
            .order_by(o.c.id)
            .limit(limit)
        ).scalars()
    )
    if unneeded:
        conn.execute(delete(o).where(o.c.id.in_(unneeded)))
    return given_up + len(done) + len(unneeded)
