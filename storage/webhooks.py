"""Repository of the organisations' webhook endpoints.

Secrets are stored as they are (the server signs with them); only the API's
creation and rotation answers show them, once.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from storage.outbox import announce
from storage.schema import webhook_endpoints

Endpoint = dict[str, Any]


def _endpoint(row: Row[Any]) -> Endpoint:
    found = dict(row._mapping)
    found["subscriptions"] = json.loads(found["subscriptions"])
    return found


def create_endpoint(
    conn: Connection,
    organisation_id: int,
    target_url: str,
    secret: str,
    subscriptions: list[str],
    enabled: bool = True,
) -> Endpoint:
    new_id = conn.execute(
        insert(webhook_endpoints)
        .values(
            organisation_id=organisation_id,
            target_url=target_url,
            secret=secret,
            subscriptions=json.dumps(sorted(set(subscriptions))),
            enabled=enabled,
            created_at=int(time.time()),
        )
        .returning(webhook_endpoints.c.id)
    ).scalar_one()
    created = endpoint(conn, new_id)
    assert created is not None
    return created


def endpoint(conn: Connection, endpoint_id: int) -> Endpoint | None:
    row = conn.execute(
        select(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id)
    ).first()
    return None if row is None else _endpoint(row)


def endpoints_of(conn: Connection, organisation_id: int) -> list[Endpoint]:
    rows = conn.execute(
        select(webhook_endpoints)
        .where(webhook_endpoints.c.organisation_id == organisation_id)
        .order_by(webhook_endpoints.c.id)
    )
    return [_endpoint(r) for r in rows]


def endpoint_at(
    conn: Connection, organisation_id: int, target_url: str, other_than: int | None = None
) -> int | None:
    """The id of the organisation's endpoint at ``target_url`` (other than
    ``other_than``), if it has one."""
    query = select(webhook_endpoints.c.id).where(
        webhook_endpoints.c.organisation_id == organisation_id,
        webhook_endpoints.c.target_url == target_url,
    )
    if other_than is not None:
        query = query.where(webhook_endpoints.c.id != other_than)
    return conn.execute(query).scalar()


def update_endpoint(conn: Connection, endpoint_id: int, values: dict[str, Any]) -> Endpoint | None:
    if "subscriptions" in values:
        values = {**values, "subscriptions": json.dumps(sorted(set(values["subscriptions"])))}
    if values.get("enabled"):
        values = {**values, "disabled_reason": None}
    if values:
        conn.execute(
            update(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id).values(**values)
        )
    if values.get("enabled"):
        announce(conn)  # what waited for it is due: wake the workers at commit
    return endpoint(conn, endpoint_id)


def rotate_secret(
    conn: Connection, endpoint_id: int, new_secret: str, previous_until: int
) -> Endpoint | None:
    """The new secret signs from now on; the current one too until
    ``previous_until`` (POSIX seconds; now or earlier: not at all)."""
    current = endpoint(conn, endpoint_id)
    if current is None:
        return None
    keep_previous = previous_until > int(time.time())
    return update_endpoint(
        conn,
        endpoint_id,
        {
            "secret": new_secret,
            "previous_secret": current["secret"] if keep_previous else None,
            "previous_secret_until": previous_until if keep_previous else None,
        },
    )


def delete_endpoint(conn: Connection, endpoint_id: int) -> bool:
    deleted = conn.execute(
        delete(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id)
    ).rowcount
    return bool(deleted)
