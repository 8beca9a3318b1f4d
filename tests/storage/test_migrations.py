"""The migrations build exactly the schema the code describes."""

from __future__ import annotations

import json

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError

from storage.database import Database, MigrationRefused
from storage.schema import (
    agent_roles,
    agents,
    metadata,
    organisations,
    outbox_record_organisations,
    usagers,
    webhook_deliveries,
)


def test_migrated_database_matches_the_schema_module(db: Database) -> None:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        differences = compare_metadata(context, metadata)
    # Server defaults are compared loosely by Alembic; tables, columns,
    # indexes, keys and constraints must all agree.
    assert differences == []


def _at(url: str, revision: str) -> tuple[Database, int]:
    """A database migrated up to ``revision``, with one organisation (its id)."""
    db = Database(url)
    command.upgrade(db.alembic_config(), revision)
    with db.transaction(write=True) as conn:
        org = conn.execute(
            insert(organisations).values(name="O", slug="o").returning(organisations.c.id)
        ).scalar_one()
    return db, org


def test_upgrades_keep_the_rows_that_refer_to_rebuilt_tables(empty_database_url: str) -> None:
    """SQLite rebuilds a table to alter it; its dependants keep their rows."""
    db, org = _at(empty_database_url, "0002")
    with db.transaction(write=True) as conn:
        agent = conn.execute(
            insert(agents).values(login="a", display_name="a", created_at=0).returning(agents.c.id)
        ).scalar_one()
        conn.execute(insert(agent_roles).values(agent_id=agent, organisation_id=org, role="basic"))
    db.migrate()  # 0003 rebuilds agents on SQLite
    with db.transaction(write=False) as conn:
        assert conn.execute(select(func.count()).select_from(agent_roles)).scalar_one() == 1
        if db.is_sqlite:  # and foreign keys are on again
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    db.dispose()


def test_0006_fills_record_organisations_and_record_keys(empty_database_url: str) -> None:
    """Upgraded from 0005: the told records' organisations are indexed (an
    initial sync finds them) and each delivery knows its event's record."""
    db, org = _at(empty_database_url, "0005")
    with db.transaction(write=True) as conn:
        conn.execute(
            text(
                "INSERT INTO outbox_records (key, model, sequence, state) VALUES "
                "('item:5', 'rdv', 2, :state), ('lieu:3', 'lieu', 1, NULL)"
            ),
            {"state": json.dumps({"organisation_ids": [org, org + 1]})},
        )
        conn.execute(
            text(
                "INSERT INTO outbox_events (id, created_ms, organisation_id, model, record_id, "
                "event, sequence, changes, data) VALUES (1, 0, :org, 'rdv', 5, 'created', 1, "
                "'[]', '{}'), (2, 0, :org, 'lieu', 3, 'created', 1, '[]', '{}')"
            ),
            {"org": org},
        )
        conn.execute(
            text(
                "INSERT INTO webhook_endpoints (id, organisation_id, target_url, secret, "
                "subscriptions, created_at) VALUES (1, :org, 'https://a.example/', 's', '[]', 0)"
            ),
            {"org": org},
        )
        conn.execute(
            text(
                "INSERT INTO webhook_deliveries (event_id, endpoint_id, state, next_attempt_ms, "
                "created_ms) VALUES (1, 1, 'pending', 0, 0), (2, 1, 'pending', 0, 0)"
            )
        )
    db.migrate()
    with db.transaction(write=False) as conn:
        indexed = {tuple(r) for r in conn.execute(select(outbox_record_organisations))}
        d = webhook_deliveries
        keys = {tuple(r) for r in conn.execute(select(d.c.event_id, d.c.record_key))}
    assert indexed == {(org, "item:5"), (org + 1, "item:5")}
    assert keys == {(1, "item:5"), (2, "lieu:3")}
    db.dispose()


def _usagers_at_0007(db: Database, emails: dict[str, list[str | None]]) -> dict[str, int]:
    """Organisations (by slug) with usagers of these emails, at schema 0007."""
    command.upgrade(db.alembic_config(), "0007")
    orgs = {}
    with db.transaction(write=True) as conn:
        for slug, addresses in emails.items():
            orgs[slug] = conn.execute(
                insert(organisations).values(name=slug, slug=slug).returning(organisations.c.id)
            ).scalar_one()
            for email in addresses:
                conn.execute(
                    insert(usagers).values(
                        organisation_id=orgs[slug],
                        first_name="U",
                        last_name="U",
                        email=email,
                        created_at=0,
                    )
                )
    return orgs


def _emails(db: Database) -> list[tuple[int, str | None]]:
    with db.transaction(write=False) as conn:
        query = select(usagers.c.organisation_id, usagers.c.email).order_by(usagers.c.id)
        return [tuple(r) for r in conn.execute(query)]


def test_the_upgrade_normalises_usagers_emails_and_keeps_them_unique(
    empty_database_url: str,
) -> None:
    db = Database(empty_database_url)
    orgs = _usagers_at_0007(
        db, {"a": [" Anne@Example.fr", "bob@example.fr", None, None], "b": ["anne@example.FR"]}
    )
    db.migrate()
    a, b = orgs["a"], orgs["b"]
    assert _emails(db) == [
        (a, "anne@example.fr"), (a, "bob@example.fr"), (a, None), (a, None), (b, "anne@example.fr")
    ]  # fmt: skip
    with pytest.raises(IntegrityError), db.transaction(write=True) as conn:
        bob_again = {"first_name": "U", "last_name": "U", "email": "bob@example.fr"}
        conn.execute(insert(usagers).values(organisation_id=a, created_at=0, **bob_again))
    db.dispose()


def test_the_upgrade_refuses_usagers_sharing_an_email_and_changes_nothing(
    empty_database_url: str,
) -> None:
    db = Database(empty_database_url)
    _usagers_at_0007(db, {"a": ["Anne@Example.fr", "x@example.fr", " anne@example.fr"]})
    before = _emails(db)
    with pytest.raises(MigrationRefused) as refused:
        db.migrate()
    assert "(ids): 1, 3." in str(refused.value)
    assert "anne" not in str(refused.value).lower()  # ids, never the emails
    assert db.current_revision() == "0007"
    assert _emails(db) == before
    db.dispose()
