"""Keys the server makes for itself and shares between its processes.

A key is made by whichever process asks first and kept in the database, so
that every process of one deployment signs and checks alike (a session cookie
made by one is read by another) without an operator writing a secret down.
"""

from __future__ import annotations

import secrets

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from storage.schema import server_keys


def key(conn: Connection, name: str) -> bytes:
    """The key named ``name`` (32 random bytes), made on first use."""
    found = conn.execute(select(server_keys.c.value).where(server_keys.c.name == name)).scalar()
    if found is None:
        candidate = secrets.token_hex(32)
        # Two processes may race: the first insert wins and both read it back.
        try:
            with conn.begin_nested():
                conn.execute(insert(server_keys).values(name=name, value=candidate))
        except IntegrityError:
            pass  # another process made it first: read back below
        found = conn.execute(
            select(server_keys.c.value).where(server_keys.c.name == name)
        ).scalar_one()
    return bytes.fromhex(found)
