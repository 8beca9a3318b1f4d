"""Blocking work of a request, off the event loop: what the API's and the
pages' contexts share (each has a database and a thread pool)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from storage.database import Database

T = TypeVar("T")
# PostgreSQL's "deadlock detected": it aborted one of two transactions that
# waited on each other; the aborted one is run again from the start.
DEADLOCK = "40P01"
WRITE_TRIES = 3


def _deadlocked(error: DBAPIError) -> bool:
    return getattr(error.orig, "sqlstate", None) == DEADLOCK


class Transactions:
    """``run`` a function on the pool; ``read`` or ``write`` it in one
    transaction (call those on the pool)."""

    db: Database
    executor: ThreadPoolExecutor

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def write(self, fn: Callable[[Connection], T]) -> T:
        """``fn`` in a write transaction, run again (up to ``WRITE_TRIES``
        times in all) when PostgreSQL aborted it to break a deadlock: ``fn``
        only writes the database, whose rollback undid all of it.  Inside an
        outer transaction it joins it, and a deadlock is the outer one's."""
        for tries_left in range(WRITE_TRIES - 1, -1, -1):
            nested = self.db.in_transaction
            try:
                with self.db.transaction(write=True) as conn:
                    return fn(conn)
            except DBAPIError as e:
                if nested or not tries_left or not _deadlocked(e):
                    raise
        raise AssertionError("unreachable: the last try returns or raises")

    def read(self, fn: Callable[[Connection], T]) -> T:
        with self.db.transaction(write=False) as conn:
            return fn(conn)
