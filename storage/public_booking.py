"""Booking requests waiting for their email check, and invitations.

Both hold personal data: a request is deleted a day after it expired
(``purge``), an invitation goes with its organisation or its usager.  Tokens
and codes are kept as digests only (the caller makes them).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from storage.schema import booking_requests, invitations

Record = dict[str, Any]
KEEP_EXPIRED_S = 24 * 3600


def purge(conn: Connection, now_s: int) -> None:
    """Forget requests expired for a day (booked or not: the RDV is in the agenda)."""
    conn.execute(
        delete(booking_requests).where(booking_requests.c.expires_at < now_s - KEEP_EXPIRED_S)
    )


def create_request(conn: Connection, values: Record) -> None:
    conn.execute(insert(booking_requests).values(**values))


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
