"""Blocking work of a request, off the event loop: what the API's and the
pages' contexts share (each has a database and a thread pool)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Connection

from storage.database import Database

T = TypeVar("T")


class Transactions:
    """``run`` a function on the pool; ``read`` or ``write`` it in one
    transaction (call those on the pool)."""

    db: Database
    executor: ThreadPoolExecutor

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def write(self, fn: Callable[[Connection], T]) -> T:
        with self.db.transaction(write=True) as conn:
            return fn(conn)

    def read(self, fn: Callable[[Connection], T]) -> T:
        with self.db.transaction(write=False) as conn:
            return fn(conn)
