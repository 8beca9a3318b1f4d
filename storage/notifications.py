"""Repository of notifications: scheduled messages, their receipts, and the
usagers' "Infos et annulation" links.

Rows are written in the transaction of the RDV's change
(``booking.notifications``), so a refused or rolled-back write schedules
nothing.  ``claim`` takes due rows for one worker (``FOR UPDATE SKIP LOCKED``
on PostgreSQL, SQLite's one writer) and pushes them a lease ahead before
anything is sent, outside any transaction: a worker killed mid-send leaves
them due again when the lease ends (sent at least once, never lost).
Reminders are rows like the others, due at their moment, found through the
``(state, due_ms)`` index: no scan of the RDVs.  A reminder no longer
wanted is marked ``dropped``, never deleted: a worker may be sending it,
and its receipt still has a row to point to.  ``record`` moves a row on
only while the recording worker's lease holds (``due_ms`` is still the
lease's end): past it, another worker may have taken the row again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import string
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from storage.database import skip_locked
from storage.outbox import announce
from storage.schema import (
    agent_roles,
    agents,
    notification_receipts,
    notifications,
    rdv_links,
    server_secrets,
)

PENDING, SENT, FAILED, SKIPPED = "pending", "sent", "failed", "skipped"
DROPPED = "dropped"  # a reminder no longer wanted (the RDV changed)
REMINDER = "reminder"
TOKEN_ALPHABET = string.ascii_uppercase + string.digits
TOKEN_LENGTH = 8
LINK_KEY = "link_hmac"


@dataclass(frozen=True)
class Scheduled:
    """A message to schedule (``rdv`` is the RDV's snapshot, JSON-ready)."""

    item_id: int
    organisation_id: int
    audience: str
    recipient_id: int
    channel: str
    kind: str
    rdv: dict[str, Any]
    due_ms: int


@dataclass(frozen=True)
class Claimed(Scheduled):
    """A message a worker took: its row, its link token (one per change) and
    its attempt (1 for the first)."""

    id: int
    link_token: str | None
    attempt: int
    created_ms: int
    leased_until_ms: int


@dataclass(frozen=True)
class Receipt:
    """One attempt and what follows: ``state`` is the row's next state and
    ``next_due_ms`` its next attempt (pending only)."""

    notification_id: int
    item_id: int
    at_ms: int
    channel: str
    template: str
    recipient: str | None
    status: str
    provider_id: str | None
    error: str | None
    state: str
    next_due_ms: int | None = None
    leased_until_ms: int | None = None  # the claim's lease (None: no lease to check)
    segments: int | None = None  # an SMS's segments


def schedule(conn: Connection, rows: list[Scheduled], now_ms: int) -> None:
    if not rows:
        return
    announce(conn)
    conn.execute(
        insert(notifications),
        [
            {
                "item_id": r.item_id,
                "organisation_id": r.organisation_id,
                "audience": r.audience,
                "recipient_id": r.recipient_id,
                "channel": r.channel,
                "kind": r.kind,
                "rdv": json.dumps(r.rdv, sort_keys=True),
                "state": PENDING,
                "due_ms": r.due_ms,
                # When it is first due (a reminder: its moment): retries give
                # up that long after.
                "created_ms": max(now_ms, r.due_ms),
            }
            for r in rows
        ],
    )


@dataclass(frozen=True)
class Waiting:
    """A reminder still waiting; ``claimed``: a worker took it at least once
    (it may be sending it now, or it waits for a retry)."""

    recipient_id: int
    due_ms: int
    channel: str
    id: int
    claimed: bool


def pending_reminders(conn: Connection, item_id: int) -> list[Waiting]:
    """The item's waiting reminders."""
    n = notifications.c
    rows = conn.execute(
        select(n.recipient_id, n.due_ms, n.channel, n.id, n.attempts).where(
            n.item_id == item_id, n.kind == REMINDER, n.state == PENDING
        )
    )
    return [Waiting(r.recipient_id, r.due_ms, r.channel, r.id, r.attempts > 0) for r in rows]


def drop(conn: Connection, row_ids: list[int], now_ms: int) -> None:
    """Mark waiting messages dropped (a reminder of an RDV moved or
    cancelled): kept, since a worker sending one still records its receipt."""
    if row_ids:
        conn.execute(
            update(notifications)
            .where(notifications.c.id.in_(row_ids), notifications.c.state == PENDING)
            .values(state=DROPPED, link_token=None, done_ms=now_ms)
        )


def _key(conn: Connection) -> bytes:
    value = conn.execute(
        select(server_secrets.c.value).where(server_secrets.c.name == LINK_KEY)
    ).scalar_one()
    return value.encode()


def token_hmac(key: bytes, token: str) -> str:
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


_SET_TOKEN = (
    update(notifications)
    .where(notifications.c.id == bindparam("row"))
    .values(link_token=bindparam("token"))
)


def _token(key: bytes, item_id: int, usager_id: int, change_ms: int) -> str:
    """The link token of one change for one usager: derived from the server's
    secret, so every worker that claims a message of that change (its email
    here, its SMS on another worker) hands out the same token."""
    digest = hmac.new(key, f"link/{item_id}/{usager_id}/{change_ms}".encode(), hashlib.sha256)
    number = int.from_bytes(digest.digest(), "big")
    chars = []
    for _ in range(TOKEN_LENGTH):
        number, index = divmod(number, len(TOKEN_ALPHABET))
        chars.append(TOKEN_ALPHABET[index])
    return "".join(chars)


def _upsert_links(conn: Connection, links: list[dict[str, Any]]) -> None:
    """Insert or replace links in one statement (no delete-then-insert race
    between two workers), in key order so that two workers never wait on
    each other's rows crosswise."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(rdv_links)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[rdv_links.c.item_id, rdv_links.c.usager_id],
            set_={
                "token_hmac": statement.excluded.token_hmac,
                "expires_ms": statement.excluded.expires_ms,
            },
        ),
        sorted(links, key=lambda link: (link["item_id"], link["usager_id"])),
    )


def _link_expiry(snapshot: str) -> int | None:
    """When a link made from this snapshot stops working (the RDV's end);
    None for a snapshot that makes no sense: no link, and the worker fails
    that message alone instead of the whole claim."""
    try:
        ends = datetime.fromisoformat(json.loads(snapshot)["ends_at"])
        return int(ends.timestamp() * 1000)
    except (ValueError, KeyError, TypeError):
        return None


def _renew_links(conn: Connection, due: list[Any]) -> dict[tuple[int, int, int], str]:
    """Give the claimed usager messages of each change their link: the
    change's token, whose HMAC replaces the usager's previous one for this
    RDV (which stops working), kept in clear on the claimed rows (a retry
    reuses it) until they are done; the email and SMS of a change share it.
    The token depends only on the change, so workers claiming rows of
    one change apart agree on it."""
    fresh = [
        r
        for r in due
        if r.audience == "usager" and r.link_token is None and _link_expiry(r.rdv) is not None
    ]
    if not fresh:
        return {}
    key = _key(conn)
    tokens: dict[tuple[int, int, int], str] = {}
    links: dict[tuple[int, int], dict[str, Any]] = {}
    for row in fresh:
        change = (row.item_id, row.recipient_id, row.created_ms)
        tokens[change] = _token(key, *change)
        links[(row.item_id, row.recipient_id)] = {
            "item_id": row.item_id,
            "usager_id": row.recipient_id,
            "token_hmac": token_hmac(key, tokens[change]),
            "expires_ms": _link_expiry(row.rdv),
        }
    _upsert_links(conn, list(links.values()))
    # Only the rows claimed here: a sibling another worker holds gets the
    # same token when its turn comes (waiting on its lock could deadlock).
    conn.execute(
        _SET_TOKEN,
        [{"row": r.id, "token": tokens[(r.item_id, r.recipient_id, r.created_ms)]} for r in fresh],
    )
    return tokens


def link_usager(conn: Connection, item_id: int, token: str, now_ms: int) -> int | None:
    """The usager a link's token opens this RDV to, while it is valid."""
    if len(token) != TOKEN_LENGTH:
        return None
    digest = token_hmac(_key(conn), token.upper())
    rows = conn.execute(
        select(rdv_links.c.usager_id, rdv_links.c.token_hmac).where(
            rdv_links.c.item_id == item_id, rdv_links.c.expires_ms > now_ms
        )
    )
    for row in rows:
        if hmac.compare_digest(row.token_hmac, digest):
            return row.usager_id
    return None


def due_rows(conn: Connection, until_ms: int, limit: int = 50) -> list[Any]:
    """The waiting rows due by ``until_ms``, soonest first: a range of the
    ``(state, due_ms)`` index, locked for this worker on PostgreSQL (rows
    another worker holds are skipped)."""
    n = notifications
    query = (
        select(n)
        .where(n.c.state == PENDING, n.c.due_ms <= until_ms)
        .order_by(n.c.due_ms, n.c.id)
        .limit(limit)
    )
    return list(conn.execute(skip_locked(conn, query)).all())


def claim(conn: Connection, now_ms: int, lease_ms: int, limit: int = 50) -> list[Claimed]:
    """Take up to ``limit`` due messages for this worker, pushed a lease ahead."""
    n = notifications
    due = due_rows(conn, now_ms, limit)
    if not due:
        return []
    conn.execute(
        update(n)
        .where(n.c.id.in_([r.id for r in due]))
        .values(attempts=n.c.attempts + 1, due_ms=now_ms + lease_ms)
    )
    tokens = _renew_links(conn, due)
    return [
        Claimed(
            item_id=r.item_id,
            organisation_id=r.organisation_id,
            audience=r.audience,
            recipient_id=r.recipient_id,
            channel=r.channel,
            kind=r.kind,
            rdv=json.loads(r.rdv),
            due_ms=r.due_ms,
            id=r.id,
            link_token=r.link_token or tokens.get((r.item_id, r.recipient_id, r.created_ms)),
            attempt=r.attempts + 1,
            created_ms=r.created_ms,
            leased_until_ms=now_ms + lease_ms,
        )
        for r in due
    ]


def record(conn: Connection, receipts: list[Receipt]) -> None:
    """Log a round's attempts and move each row on (the clear token is
    forgotten once the message is no longer waiting).  A receipt whose row is
    gone is not kept; a row moves on only while it waits and, for a claim,
    while this worker's lease holds: a dropped reminder stays dropped, a row
    another worker took again is that worker's to record."""
    if not receipts:
        return
    n = notifications.c
    present = set(
        conn.execute(select(n.id).where(n.id.in_({r.notification_id for r in receipts}))).scalars()
    )
    kept = [r for r in receipts if r.notification_id in present]
    if not kept:
        return
    conn.execute(
        insert(notification_receipts),
        [
            {
                "notification_id": r.notification_id,
                "item_id": r.item_id,
                "at_ms": r.at_ms,
                "channel": r.channel,
                "template": r.template,
                "recipient": r.recipient[:80] if r.recipient else None,
                "status": r.status,
                "provider_id": r.provider_id[:200] if r.provider_id else None,
                "error": r.error,
                "segments": r.segments,
            }
            for r in kept
        ],
    )
    for r in kept:
        values: dict[str, Any] = {"state": r.state}
        if r.state == PENDING:
            values["due_ms"] = r.next_due_ms
        else:
            values.update(link_token=None, done_ms=r.at_ms)
        query = update(notifications).where(n.id == r.notification_id, n.state == PENDING)
        if r.leased_until_ms is not None:
            query = query.where(n.due_ms == r.leased_until_ms)
        conn.execute(query.values(**values))


@dataclass(frozen=True)
class Retention:
    """How long messages that no longer wait are kept with their receipts
    (milliseconds since they were done): sent, skipped or dropped ones, and
    failed ones (kept longer: what an agent looks into)."""

    done_ms: int
    failed_ms: int


def purge(conn: Connection, now_ms: int, keep: Retention, limit: int = 500) -> int:
    """Delete one small batch of messages past their retention, with their
    receipts; how many (the caller comes back soon while that is ``limit``)."""
    n = notifications.c
    old = list(
        conn.execute(
            select(n.id)
            .where(
                or_(
                    n.state.in_((SENT, SKIPPED, DROPPED)) & (n.done_ms < now_ms - keep.done_ms),
                    (n.state == FAILED) & (n.done_ms < now_ms - keep.failed_ms),
                )
            )
            .limit(limit)
        ).scalars()
    )
    if old:
        conn.execute(
            delete(notification_receipts).where(notification_receipts.c.notification_id.in_(old))
        )
        conn.execute(delete(notifications).where(n.id.in_(old)))
    return len(old)


def next_due_ms(conn: Connection) -> int | None:
    """When the earliest waiting message is due (None: nothing waits)."""
    return conn.execute(
        select(func.min(notifications.c.due_ms)).where(notifications.c.state == PENDING)
    ).scalar_one_or_none()


def due_count(conn: Connection, until_ms: int) -> int:
    """How many messages are due by ``until_ms`` (an indexed range)."""
    n = notifications.c
    return conn.execute(
        select(func.count()).where(n.state == PENDING, n.due_ms <= until_ms)
    ).scalar_one()


def receipts_of(conn: Connection, item_id: int, limit: int = 200) -> list[dict[str, Any]]:
    """The RDV's receipts, newest first."""
    r = notification_receipts
    rows = conn.execute(
        select(r).where(r.c.item_id == item_id).order_by(r.c.id.desc()).limit(limit)
    )
    return [{k: v for k, v in row._mapping.items() if k != "item_id"} for row in rows]


def waiting_of(conn: Connection, item_id: int) -> list[dict[str, Any]]:
    """The RDV's messages still waiting (reminders mostly), soonest first."""
    n = notifications.c
    rows = conn.execute(
        select(n.id, n.audience, n.recipient_id, n.channel, n.kind, n.due_ms)
        .where(n.item_id == item_id, n.state == PENDING)
        .order_by(n.due_ms, n.id)
    )
    return [dict(row._mapping) for row in rows]


def agents_of(conn: Connection, agent_ids: list[int], organisation_id: int) -> list[dict[str, Any]]:
    """What deciding an agent's notification needs: login, email, preference,
    role in the RDV's organisation and whether it can log in."""
    if not agent_ids:
        return []
    rows = conn.execute(
        select(
            agents.c.id,
            agents.c.login,
            agents.c.email,
            agents.c.rdv_notifications_level,
            agents.c.password_hash.is_not(None).label("can_login"),
            agent_roles.c.role,
        )
        .outerjoin(
            agent_roles,
            (agent_roles.c.agent_id == agents.c.id)
            & (agent_roles.c.organisation_id == organisation_id),
        )
        .where(agents.c.id.in_(agent_ids))
    )
    return [dict(r._mapping) for r in rows]


def agent_level(conn: Connection, agent_id: int) -> str:
    """The agent's preference: all, others, soon or none."""
    return conn.execute(
        select(agents.c.rdv_notifications_level).where(agents.c.id == agent_id)
    ).scalar_one()


def set_agent_level(conn: Connection, agent_id: int, level: str) -> None:
    conn.execute(
        update(agents).where(agents.c.id == agent_id).values(rdv_notifications_level=level)
    )
