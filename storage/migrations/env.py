"""Alembic environment: runs on the engine the Database object hands over.

On SQLite, foreign keys are off while migrations run: a batch migration
rebuilds a table (copy, drop, rename), and dropping a table with
``PRAGMA foreign_keys=ON`` deletes its rows first, which would fire the
``ON DELETE CASCADE`` of every table that refers to it (rebuilding ``agents``
would empty ``agent_roles``).  The pragma only takes effect outside a
transaction, hence on the raw connection before anything begins.
"""

from alembic import context

from storage.schema import metadata

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
    try:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=sqlite,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    finally:
        if sqlite:
            connection.rollback()
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")
