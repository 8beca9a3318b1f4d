"""The migrations build exactly the schema the code describes."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from storage.database import Database
from storage.schema import metadata


def test_migrated_database_matches_the_schema_module(db: Database) -> None:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        differences = compare_metadata(context, metadata)
    # Server defaults are compared loosely by Alembic; tables, columns,
    # indexes, keys and constraints must all agree.
    assert differences == []
