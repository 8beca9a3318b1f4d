"""Engine creation and the one-request-one-transaction discipline.

A ``Database`` owns the SQLAlchemy engine and a per-thread current transaction.
Radicale runs each request in one thread and opens it with ``acquire_lock``;
``transaction()`` is what that lock opens, and ``connection()`` is how every
repository call finds it (or opens a short transaction of its own when called
outside, as Radicale does after it has released the lock).

SQLite: WAL mode, ``BEGIN IMMEDIATE`` for writes so that a writer takes the
write lock before it reads (no upgrade deadlock, no "database is locked" half way
through), a busy timeout for other processes, and an in-process writer lock so
that threads of one process queue instead of spinning in SQLite's busy handler.
PostgreSQL: READ COMMITTED for writes (the row lock on the collection's revision
counter serializes writers of one collection across processes and hosts) and
REPEATABLE READ for reads, so a multi-statement read sees one snapshot.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, FromClause, Select, create_engine, event, inspect, text
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    import sqlite3

    from alembic.config import Config as AlembicConfig

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The newest migration.  Checked against Alembic's own view by the test suite;
# it lets a server whose schema is current start without loading Alembic
# (and its templating stack), which is a fifth of a server's memory.
HEAD_REVISION = "0018_item_heads_index"
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Set in a connection's info by a transaction that wrote outbox events
# (storage/outbox.py): its commit wakes this process's workers.
OUTBOX_WRITTEN = "calserver_outbox_written"
# The login of the agent whose request opened the transaction (CalDAV or the
# API): agents who asked not to be told of their own changes are not.
AUTHOR = "calserver_author"


def set_author(conn: Connection, login: str | None) -> None:
    """Name the agent the transaction writes for (see ``AUTHOR``)."""
    if login:
        conn.info[AUTHOR] = login


def author_of(conn: Connection) -> str | None:
    return conn.info.get(AUTHOR)


# Set by ``calserver import``: the RDVs it loads already exist for their
# usagers and agents, so they are told nothing (reminders are still kept).
NOTICES_MUTED = "calserver_notices_muted"


def mute_notices(conn: Connection) -> None:
    conn.info[NOTICES_MUTED] = True


def notices_muted(conn: Connection) -> bool:
    return bool(conn.info.get(NOTICES_MUTED))


# Set while a transaction opened by ``Database.transaction`` writes.  A read
# (REPEATABLE READ on PostgreSQL) must not lock rows: SELECT ... FOR UPDATE on
# a row another transaction changed meanwhile fails there ("could not
# serialize access").
WRITING = "calserver_writing"


def is_writing(conn: Connection) -> bool:
    """Whether ``conn`` runs a write transaction (a connection opened by
    other means is taken as one: it may lock)."""
    return bool(conn.info.get(WRITING, True))


class MigrationRefused(Exception):
    """A migration found data it cannot bring to the new schema without a
    person's decision; it changed nothing and says what to fix."""


def skip_locked(conn: Connection, query: Select[Any], of: FromClause | None = None) -> Select[Any]:
    """``query`` taking row locks that other workers' claims skip, on
    PostgreSQL (``of``: the table whose rows to lock); as it is on SQLite,
    where the one writer already keeps claims apart."""
    if conn.dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True, of=of)
    return query


# Each pooled SQLite connection keeps its own page cache, resident in the
# process (2 MiB by default, a dozen connections); the operating system's
# page cache already keeps the file, so a small one costs a read of a hot
# page now and then.
SQLITE_CACHE_KIB = 512


class Database:
    """A database URL made usable: engine, transactions, migrations."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._on_outbox_commit: list[Callable[[], None]] = []
        if self.is_sqlite:
            self.engine = self._sqlite_engine(url)
        else:
            self.engine = create_engine(
                _with_psycopg3(url),
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=True,
            )

    @staticmethod
    def _sqlite_engine(url: str) -> Engine:
        engine = create_engine(url, connect_args={"check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
            # Let SQLAlchemy's "begin" event below emit BEGIN itself.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine

    # -- transactions ---------------------------------------------------

    @property
    def in_transaction(self) -> bool:
        return getattr(self._local, "conn", None) is not None

    @property
    def in_write_transaction(self) -> bool:
        return self.in_transaction and self._local.write

    @contextlib.contextmanager
    def transaction(self, write: bool) -> Iterator[Connection]:
        """Open the thread's transaction; commit on success, roll back on error.

        Nested calls join the outer transaction (a read inside a write is fine;
        a write inside a read is a programming error and is refused).
        """
        current = getattr(self._local, "conn", None)
        if current is not None:
            if write and not self._local.write:
                raise RuntimeError("write requested inside a read-only transaction")
            yield current
            return
        lock = self._write_lock if (write and self.is_sqlite) else contextlib.nullcontext()
        with lock, self.engine.connect() as conn:
            if self.is_sqlite:
                conn.execution_options(sqlite_begin="IMMEDIATE" if write else "DEFERRED")
            else:
                conn.execution_options(
                    isolation_level="READ COMMITTED" if write else "REPEATABLE READ"
                )
            self._local.conn, self._local.write = conn, write
            conn.info[WRITING] = write
            try:
                with conn.begin():
                    yield conn
            finally:
                self._local.conn = None
                conn.info.pop(AUTHOR, None)
                conn.info.pop(NOTICES_MUTED, None)
                conn.info.pop(WRITING, None)
                told = conn.info.pop(OUTBOX_WRITTEN, False)
        if told:  # committed: an exception would have left above
            # A copy: a worker may stop (and unregister) while this thread calls.
            for wake in tuple(self._on_outbox_commit):
                wake()

    def on_outbox_commit(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` (from the committing thread) after each commit that
        wrote outbox events: the in-process signal for this process's workers.
        A worker unregisters with ``off_outbox_commit`` when it stops: its
        event loop may be closed by the next commit."""
        self._on_outbox_commit.append(wake)

    def off_outbox_commit(self, wake: Callable[[], None]) -> None:
        """Stop calling ``wake`` (registered by ``on_outbox_commit``)."""
        with contextlib.suppress(ValueError):
            self._on_outbox_commit.remove(wake)

    @contextlib.contextmanager
    def connection(self, write: bool = False) -> Iterator[Connection]:
        """The current transaction's connection, or a short transaction of its own."""
        with self.transaction(write) as conn:
            yield conn

    # -- schema ---------------------------------------------------------

    def alembic_config(self) -> AlembicConfig:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.attributes["engine"] = self.engine
        return cfg

    def current_revision(self) -> str | None:
        if not inspect(self.engine).has_table("alembic_version"):
            return None
        with self.engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()

    def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        if self.current_revision() == HEAD_REVISION:
            return
        from alembic import command

        command.upgrade(self.alembic_config(), "head")

    def dispose(self) -> None:
        self.engine.dispose()


def _with_psycopg3(url: str) -> str:
    """Prefer psycopg 3 for a bare ``postgresql://`` URL (SQLAlchemy's default is psycopg2)."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)
