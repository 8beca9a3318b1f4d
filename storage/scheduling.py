"""Repository of the scheduling domain's records: organisations' settings,
services, agents' memberships, lieux, motifs and usagers.

Plain dictionaries in and out; validation of what the values mean lives in
``booking/`` and the callers.  Every create and update is told to the outbox
here, in the caller's transaction, whatever called it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, CursorResult, Select, Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from storage import outbox
from storage.schema import (
    agent_roles,
    agent_services,
    agents,
    invitations,
    lieux,
    motifs,
    organisations,
    services,
    usagers,
)

Record = dict[str, Any]

_AGENT_PUBLIC = (
    agents.c.id,
    agents.c.login,
    agents.c.display_name,
    agents.c.email,
    agents.c.other_calendars_block,
    agents.c.feed_with_availability,
)


# The outbox's model of each table written here.
_MODELS = {"organisations": "organisation", "lieux": "lieu", "motifs": "motif", "usagers": "usager"}


@dataclass(frozen=True)
class _Unique:
    """What a table's unique constraint means, for the person who broke it,
    and how to find the record already holding the value (for its id)."""

    message: str
    holder: Callable[[Record], Select]


def _holder(table: Table, *columns: str) -> Callable[[Record], Select]:
    """The query for the id of the record whose ``columns`` equal a row's."""

    def query(row: Record) -> Select:
        return select(table.c.id).where(*(table.c[c] == row[c] for c in columns))

    return query


_UNIQUE = {
    "organisations": _Unique(
        "an organisation with this slug already exists", _holder(organisations, "slug")
    ),
    "motifs": _Unique(
        "this organisation already has a motif of this name and location type",
        _holder(motifs, "organisation_id", "name", "location_type"),
    ),
    "usagers": _Unique(
        "another usager of this organisation already has this email",
        _holder(usagers, "organisation_id", "email"),
    ),
}


class Duplicate(ValueError):
    """A create or update would give two records what only one may have (a
    unique constraint): the caller's whole write is abandoned.  ``existing_id``
    is the record that already has it, so the caller can point at it."""

    def __init__(self, message: str, existing_id: int | None) -> None:
        super().__init__(message if existing_id is None else f"{message} (id {existing_id})")
        self.existing_id = existing_id


def _unique_violation(error: IntegrityError) -> bool:
    # PostgreSQL's SQLSTATE 23505; SQLite says it in words.
    return getattr(error.orig, "sqlstate", None) == "23505" or "UNIQUE constraint failed" in str(
        error.orig
    )


def _returned(result: CursorResult) -> int | None:
    return result.scalar_one() if result.returns_rows else None


def _written(
    conn: Connection, table: Table, statement: Any, values: Record, record_id: int | None = None
) -> int | None:
    """Run ``statement``, which writes ``values`` (into record ``record_id``
    for an update), and return the id it returns (an insert's); a unique
    violation is a ``Duplicate`` naming the record already there.

    The statement runs in a savepoint: after a violation PostgreSQL refuses
    every statement of the transaction until it is rolled back to one, and the
    holder is looked up in the same transaction (a racing writer's record,
    committed meanwhile, is seen too).  The id is read inside the savepoint:
    SQLite cannot release one while a RETURNING cursor is open."""
    unique = _UNIQUE.get(table.name)
    if unique is None:
        return _returned(conn.execute(statement))
    try:
        with conn.begin_nested():
            return _returned(conn.execute(statement))
    except IntegrityError as e:
        if not _unique_violation(e):
            raise
        current = _one(conn, table, record_id) if record_id is not None else None
        row = {**(current or {}), **values}
        existing = conn.execute(unique.holder(row)).scalars().first()
        raise Duplicate(unique.message, existing) from None


def normalised_email(email: str | None) -> str | None:
    """A usager's email as stored and compared: trimmed and lower-cased (as
    RDV-SP's accounts do), so that ``Anne@X.fr `` and ``anne@x.fr`` are one
    address; an empty one is none."""
    if email is None:
        return None
    return email.strip().lower() or None


def _tell(conn: Connection, table: Table, record: Record) -> None:
    organisation = record["id"] if table is organisations else record["organisation_id"]
    outbox.track(conn, _MODELS[table.name], record["id"], record, [organisation])


def _one(conn: Connection, table: Table, record_id: int) -> Record | None:
    row = conn.execute(select(table).where(table.c.id == record_id)).mappings().first()
    return dict(row) if row else None


def _of_organisation(conn: Connection, table: Table, organisation_id: int) -> list[Record]:
    query = select(table).where(table.c.organisation_id == organisation_id).order_by(table.c.id)
    return [dict(r) for r in conn.execute(query).mappings()]


def _insert(conn: Connection, table: Table, values: Record) -> Record:
    statement = insert(table).values(**values).returning(table.c.id)
    new_id = _written(conn, table, statement, values)
    assert new_id is not None
    created = _one(conn, table, new_id)
    assert created is not None
    _tell(conn, table, created)
    return created


def _update(conn: Connection, table: Table, record_id: int, values: Record) -> Record | None:
    if not values:
        return _one(conn, table, record_id)
    statement = update(table).where(table.c.id == record_id).values(**values)
    _written(conn, table, statement, values, record_id)
    updated = _one(conn, table, record_id)
    if updated is not None:
        _tell(conn, table, updated)
    return updated


# -- organisations and services -----------------------------------------


def organisation(conn: Connection, organisation_id: int) -> Record | None:
    return _one(conn, organisations, organisation_id)


def organisation_by_slug(conn: Connection, slug: str) -> Record | None:
    row = conn.execute(select(organisations).where(organisations.c.slug == slug)).mappings().first()
    return dict(row) if row else None


def update_organisation(conn: Connection, organisation_id: int, values: Record) -> Record | None:
    return _update(conn, organisations, organisation_id, values)


def organisation_services(conn: Connection, organisation_id: int) -> list[Record]:
    return _of_organisation(conn, services, organisation_id)


def service(conn: Connection, service_id: int) -> Record | None:
    return _one(conn, services, service_id)


# -- agents ----------------------------------------------------------------


def agent_by_login(conn: Connection, login: str) -> Record | None:
    row = conn.execute(select(*_AGENT_PUBLIC).where(agents.c.login == login)).mappings().first()
    return dict(row) if row else None


def agent(conn: Connection, agent_id: int) -> Record | None:
    row = conn.execute(select(*_AGENT_PUBLIC).where(agents.c.id == agent_id)).mappings().first()
    return dict(row) if row else None


# Read on every agenda write and feed poll, hence prebuilt.
_ORGANISATIONS_OF = (
    select(organisations.c.id, organisations.c.time_zone)
    .join(agent_roles, agent_roles.c.organisation_id == organisations.c.id)
    .where(agent_roles.c.agent_id == bindparam("agent"))
    .order_by(organisations.c.id)
)


def organisations_of(conn: Connection, agent_id: int) -> list[tuple[int, str]]:
    """(id, time zone) of the agent's organisations, by id."""
    return [(r.id, r.time_zone) for r in conn.execute(_ORGANISATIONS_OF, {"agent": agent_id})]


def roles_of(conn: Connection, agent_id: int) -> dict[int, str]:
    """Organisation id -> role of the agent there."""
    rows = conn.execute(
        select(agent_roles.c.organisation_id, agent_roles.c.role).where(
            agent_roles.c.agent_id == agent_id
        )
    )
    return {r.organisation_id: r.role for r in rows}


def service_ids_of(conn: Connection, agent_ids: list[int]) -> dict[int, set[int]]:
    found: dict[int, set[int]] = {a: set() for a in agent_ids}
    if agent_ids:
        rows = conn.execute(
            select(agent_services.c.agent_id, agent_services.c.service_id).where(
                agent_services.c.agent_id.in_(agent_ids)
            )
        )
        for r in rows:
            found[r.agent_id].add(r.service_id)
    return found


def organisation_agents(conn: Connection, organisation_id: int) -> list[Record]:
    query = (
        select(*_AGENT_PUBLIC, agent_roles.c.role)
        .join(agent_roles, agent_roles.c.agent_id == agents.c.id)
        .where(agent_roles.c.organisation_id == organisation_id)
        .order_by(agents.c.id)
    )
    return [dict(r) for r in conn.execute(query).mappings()]


def agents_of_service(conn: Connection, service_id: int) -> list[int]:
    """Agents of the service who can hold RDVs in its organisation (any role:
    an intervenant has an agenda too)."""
    query = (
        select(agent_services.c.agent_id)
        .join(services, services.c.id == agent_services.c.service_id)
        .join(
            agent_roles,
            (agent_roles.c.agent_id == agent_services.c.agent_id)
            & (agent_roles.c.organisation_id == services.c.organisation_id),
        )
        .where(agent_services.c.service_id == service_id)
        .order_by(agent_services.c.agent_id)
    )
    return list(conn.execute(query).scalars())


def set_agent_settings(conn: Connection, agent_id: int, values: Record) -> Record | None:
    if not values:
        return agent(conn, agent_id)
    conn.execute(update(agents).where(agents.c.id == agent_id).values(**values))
    tell_agent(conn, agent_id)
    return agent(conn, agent_id)


def tell_agent(conn: Connection, agent_id: int) -> None:
    """Tell the outbox the agent's state, to each of its organisations."""
    found = agent(conn, agent_id)
    if found is not None:
        outbox.track(conn, "agent", agent_id, found, roles_of(conn, agent_id))


# -- lieux, motifs, usagers ---------------------------------------------------


def lieu(conn: Connection, lieu_id: int) -> Record | None:
    return _one(conn, lieux, lieu_id)


def lieux_of(conn: Connection, organisation_id: int) -> list[Record]:
    return _of_organisation(conn, lieux, organisation_id)


def create_lieu(conn: Connection, values: Record) -> Record:
    return _insert(conn, lieux, values)


def update_lieu(conn: Connection, lieu_id: int, values: Record) -> Record | None:
    return _update(conn, lieux, lieu_id, values)


def motif(conn: Connection, motif_id: int) -> Record | None:
    return _one(conn, motifs, motif_id)


def motifs_of(conn: Connection, organisation_id: int) -> list[Record]:
    return _of_organisation(conn, motifs, organisation_id)


def create_motif(conn: Connection, values: Record) -> Record:
    return _insert(conn, motifs, values)


def update_motif(conn: Connection, motif_id: int, values: Record) -> Record | None:
    return _update(conn, motifs, motif_id, values)


def usager(conn: Connection, usager_id: int) -> Record | None:
    return _one(conn, usagers, usager_id)


def usagers_of(conn: Connection, organisation_id: int) -> list[Record]:
    return _of_organisation(conn, usagers, organisation_id)


def _usager_values(values: Record) -> Record:
    if "email" in values:
        return {**values, "email": normalised_email(values["email"])}
    return values


def create_usager(conn: Connection, values: Record) -> Record:
    """A new usager; its email (normalised) must be its organisation's only
    one (``Duplicate`` names the usager that has it)."""
    return _insert(conn, usagers, {"created_at": int(time.time()), **_usager_values(values)})


def usager_by_email(conn: Connection, values: Record) -> tuple[Record, bool]:
    """The organisation's usager with ``values``' email, made from ``values``
    when there is none (or no email): (record, whether it was made)."""
    try:
        return create_usager(conn, values), True
    except Duplicate as e:
        assert e.existing_id is not None
        found = usager(conn, e.existing_id)
        assert found is not None
        return found, False


def update_usager(conn: Connection, usager_id: int, values: Record) -> Record | None:
    return _update(conn, usagers, usager_id, _usager_values(values))


def learn_existing_records(conn: Connection) -> int:
    """Teach the outbox every organisation, lieu, motif, usager and agent
    written before it existed (``outbox.learn``); how many it learnt."""
    learnt = 0
    for organisation_id in conn.execute(select(organisations.c.id)).scalars():
        record = organisation(conn, organisation_id)
        assert record is not None
        learnt += outbox.learn(conn, "organisation", organisation_id, record, [organisation_id])
        for table in (lieux, motifs, usagers):
            for row in _of_organisation(conn, table, organisation_id):
                learnt += outbox.learn(conn, _MODELS[table.name], row["id"], row, [organisation_id])
        for member in organisation_agents(conn, organisation_id):
            fields = {k: v for k, v in member.items() if k != "role"}
            learnt += outbox.learn(
                conn, "agent", member["id"], fields, roles_of(conn, member["id"])
            )
    return learnt


# Kind -> table, for the batched reads of the webhooks' payloads.
KINDS = {
    "organisation": organisations,
    "lieu": lieux,
    "motif": motifs,
    "usager": usagers,
    "agent": agents,
    "invitation": invitations,
}


def records_by_id(conn: Connection, kind: str, ids: set[int]) -> dict[int, Record]:
    """Records of one kind by id, in one query per 500 (agents: their public
    fields only)."""
    table = KINDS[kind]
    columns = _AGENT_PUBLIC if table is agents else (table,)
    wanted = sorted(ids)
    found: dict[int, Record] = {}
    for start in range(0, len(wanted), 500):
        query = select(*columns).where(table.c.id.in_(wanted[start : start + 500]))
        found.update((r["id"], dict(r)) for r in conn.execute(query).mappings())
    return found
