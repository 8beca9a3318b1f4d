"""Booking requests waiting for their email check, and invitations.

Both hold personal data: a request is deleted a day after it expired
(``purge``), an invitation goes with its organisation or its usager.  Tokens
and codes are kept as digests only (the caller makes them), except in the
verification email a request holds until the notification worker sent it
(``claim_mails``, ``mail_sent``, ``mail_later``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from storage import outbox
from storage.database import skip_locked
from storage.schema import booking_requests, invitations

Record = dict[str, Any]
KEEP_EXPIRED_S = 24 * 3600


def purge(conn: Connection, now_s: int) -> None:
    """Forget requests expired for a day (booked or not: the RDV is in the agenda)."""
    conn.execute(
        delete(booking_requests).where(booking_requests.c.expires_at < now_s - KEEP_EXPIRED_S)
    )


def create_request(conn: Connection, values: Record) -> None:
    """The request; when it carries its ``mail`` and ``mail_due_ms``, the
    commit wakes the notification worker that sends it."""
    conn.execute(insert(booking_requests).values(**values))
    if values.get("mail_due_ms") is not None:
        outbox.announce(conn)


@dataclass(frozen=True)
class PendingMail:
    request_id: str
    recipient: str
    mail: str
    tries: int
    expires_at: int  # seconds


def claim_mails(conn: Connection, now_ms: int, lease_ms: int, limit: int) -> list[PendingMail]:
    """Verification emails due, each pushed ``lease_ms`` ahead: the caller's
    to send (another worker takes one again only when this one died)."""
    r = booking_requests
    query = (
        select(r.c.id, r.c.email, r.c.mail, r.c.mail_tries, r.c.expires_at)
        .where(r.c.mail_due_ms <= now_ms, r.c.mail.is_not(None))
        .order_by(r.c.mail_due_ms)
        .limit(limit)
    )
    rows = conn.execute(skip_locked(conn, query)).all()
    if rows:
        conn.execute(
            update(r)
            .where(r.c.id.in_([row.id for row in rows]))
            .values(mail_due_ms=now_ms + lease_ms)
        )
    return [
        PendingMail(row.id, row.email, row.mail, row.mail_tries, row.expires_at) for row in rows
    ]


def mail_sent(conn: Connection, request_id: str) -> None:
    """Sent or given up: the email (and its code in clear) is forgotten."""
    conn.execute(
        update(booking_requests)
        .where(booking_requests.c.id == request_id)
        .values(mail=None, mail_due_ms=None)
    )


def mail_refused(conn: Connection, request_id: str) -> None:
    """The address was refused for good: forgotten like a sent email, and
    marked so that the page asks the usager to check it."""
    conn.execute(
        update(booking_requests)
        .where(booking_requests.c.id == request_id)
        .values(mail=None, mail_due_ms=None, mail_refused=True)
    )


def mail_later(conn: Connection, request_id: str, due_ms: int) -> None:
    conn.execute(
        update(booking_requests)
        .where(booking_requests.c.id == request_id)
        .values(mail_due_ms=due_ms, mail_tries=booking_requests.c.mail_tries + 1)
    )


def next_mail_due_ms(conn: Connection) -> int | None:
    return conn.execute(select(func.min(booking_requests.c.mail_due_ms))).scalar_one()


def booking_request(conn: Connection, request_id: str, *, lock: bool = False) -> Record | None:
    """The request; ``lock`` first takes its row (a booking and its double
    click queue on it instead of racing for one slot)."""
    if lock:
        conn.execute(
            update(booking_requests)
            .where(booking_requests.c.id == request_id)
            .values(attempts=booking_requests.c.attempts)
        )
    row = (
        conn.execute(select(booking_requests).where(booking_requests.c.id == request_id))
        .mappings()
        .first()
    )
    return dict(row) if row else None


def update_request(conn: Connection, request_id: str, **values: Any) -> None:
    conn.execute(
        update(booking_requests).where(booking_requests.c.id == request_id).values(**values)
    )


def count_attempt(conn: Connection, request_id: str) -> None:
    conn.execute(
        update(booking_requests)
        .where(booking_requests.c.id == request_id)
        .values(attempts=booking_requests.c.attempts + 1)
    )


# -- invitations -----------------------------------------------------------------


def create_invitation(conn: Connection, values: Record) -> Record:
    new_id = conn.execute(
        insert(invitations).values(**values).returning(invitations.c.id)
    ).scalar_one()
    found = invitation(conn, new_id)
    assert found is not None
    return found


def invitation(conn: Connection, invitation_id: int, *, lock: bool = False) -> Record | None:
    if lock:
        conn.execute(
            update(invitations)
            .where(invitations.c.id == invitation_id)
            .values(rdv_uid=invitations.c.rdv_uid)
        )
    row = (
        conn.execute(select(invitations).where(invitations.c.id == invitation_id))
        .mappings()
        .first()
    )
    return dict(row) if row else None


def invitation_by_token(conn: Connection, token_hash: str) -> Record | None:
    row = (
        conn.execute(select(invitations).where(invitations.c.token_hash == token_hash))
        .mappings()
        .first()
    )
    return dict(row) if row else None


def invitations_of(conn: Connection, organisation_id: int) -> list[Record]:
    query = (
        select(invitations)
        .where(invitations.c.organisation_id == organisation_id)
        .order_by(invitations.c.id)
    )
    return [dict(r) for r in conn.execute(query).mappings()]


def set_invitation_booked(conn: Connection, invitation_id: int, agent_id: int, uid: str) -> None:
    conn.execute(
        update(invitations)
        .where(invitations.c.id == invitation_id)
        .values(agent_id=agent_id, rdv_uid=uid)
    )
