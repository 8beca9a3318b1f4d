"""The migrations build exactly the schema the code describes."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, insert, select

from storage.database import Database
from storage.schema import agent_roles, agents, metadata, organisations


def test_migrated_database_matches_the_schema_module(db: Database) -> None:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        differences = compare_metadata(context, metadata)
    # Server defaults are compared loosely by Alembic; tables, columns,
    # indexes, keys and constraints must all agree.
    assert differences == []


def test_upgrades_keep_the_rows_that_refer_to_rebuilt_tables(empty_database_url: str) -> None:
    """SQLite rebuilds a table to alter it; its dependants keep their rows."""
    db = Database(empty_database_url)
    command.upgrade(db.alembic_config(), "0002")
    with db.transaction(write=True) as conn:
        org = conn.execute(
            insert(organisations).values(name="O", slug="o").returning(organisations.c.id)
        ).scalar_one()
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
