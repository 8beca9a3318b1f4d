"""Write transactions run again when PostgreSQL breaks a deadlock: two
writers taking the same two locks in opposite orders both finish, each
write done once."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from calserver.blocking import WRITE_TRIES, Transactions
from storage.database import Database


@dataclass
class Context(Transactions):
    db: Database
    executor: ThreadPoolExecutor


@pytest.fixture
def pg(pg_url: str) -> Iterator[Database]:
    database = Database(pg_url)
    with database.transaction(write=True) as conn:
        conn.execute(text("CREATE TABLE tally (name text PRIMARY KEY, n int NOT NULL)"))
        conn.execute(text("INSERT INTO tally VALUES ('a', 0), ('b', 0)"))
    yield database
    database.dispose()


def _bump(conn: Connection, name: str) -> None:
    conn.execute(text("UPDATE tally SET n = n + 1 WHERE name = :name"), {"name": name})


def _tally(db: Database) -> dict[str, int]:
    with db.transaction(write=False) as conn:
        return {row.name: row.n for row in conn.execute(text("SELECT name, n FROM tally"))}


def test_both_writers_of_a_deadlock_finish_once_each(pg: Database) -> None:
    both_hold_one = threading.Barrier(2, timeout=10)
    tries: list[str] = []

    def crosswise(first: str, second: str) -> Callable[[Connection], str]:
        def write(conn: Connection) -> str:
            tries.append(first)
            _bump(conn, first)
            if len(tries) <= 2:  # the first round: each waits for the other's row
                both_hold_one.wait()
            _bump(conn, second)
            return first

        return write

    context = Context(pg, ThreadPoolExecutor(2))
    try:
        with ThreadPoolExecutor(2) as pool:
            done = list(pool.map(context.write, [crosswise("a", "b"), crosswise("b", "a")]))
    finally:
        context.executor.shutdown()
    assert sorted(done) == ["a", "b"]
    assert len(tries) == 3  # PostgreSQL aborted one; it ran again, alone
    assert _tally(pg) == {"a": 2, "b": 2}  # the aborted try left nothing


def test_a_lasting_deadlock_is_raised_after_the_last_try(pg: Database) -> None:
    calls: list[int] = []

    class Deadlock(Exception):
        sqlstate = "40P01"

    def always(conn: Connection) -> None:
        calls.append(1)
        raise DBAPIError("UPDATE", {}, Deadlock())

    context = Context(pg, ThreadPoolExecutor(1))
    with pytest.raises(DBAPIError):
        context.write(always)
    context.executor.shutdown()
    assert len(calls) == WRITE_TRIES
