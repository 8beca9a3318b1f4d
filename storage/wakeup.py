"""How background workers sleep and wake.  ``listen`` (PostgreSQL: a NOTIFY
on the outbox channel from any process's commit) and ``first`` (the first of
"woken" and "stop", with a bound) serve the webhook and notification workers;
``serve`` is the notification worker's loop: a round after every commit that
scheduled messages (in process, or NOTIFY), when the next message is due, or
after the poll interval at most; a failed round (the database went away) is
tried again a few seconds later."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.engine import make_url

from storage.database import Database
from storage.outbox import CHANNEL, now_ms


async def listen(db: Database, wake: Callable[[], None], log: logging.Logger) -> None:
    """PostgreSQL: call ``wake`` on every NOTIFY of the outbox channel (and
    once on connecting, for what was written while not listening)."""
    import psycopg  # only a server on PostgreSQL listens: SQLite ones never load it

    url = make_url(db.url).set(drivername="postgresql")
    conninfo = url.render_as_string(hide_password=False)
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                await conn.execute(f"LISTEN {CHANNEL}")
                wake()
                async for _ in conn.notifies():
                    wake()
        except (psycopg.Error, OSError):
            log.warning("worker: LISTEN connection lost; reconnecting")
            await asyncio.sleep(1)


def sleep_s(due_ms: int | None, poll_s: float, floor_s: float = 0.0) -> float:
    """How long a worker sleeps: until its next due row (``due_ms``; None:
    nothing due), at least ``floor_s`` and at most ``poll_s``."""
    if due_ms is None:
        return poll_s
    return max(floor_s, min(poll_s, (due_ms - now_ms()) / 1000))


async def first(wake: asyncio.Event, stop: asyncio.Event, timeout: float) -> None:
    """Return when woken, stopped or after ``timeout`` seconds."""
    waiters = [asyncio.create_task(wake.wait()), asyncio.create_task(stop.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def serve(
    db: Database,
    wake: asyncio.Event,
    stop: asyncio.Event,
    round_once: Callable[[], Awaitable[int]],
    sleep_s: Callable[[], float],
    poll_s: float,
    log: logging.Logger,
    settle_s: float = 0.0,
) -> None:
    """Run rounds until ``stop``: again at once after a round that did work,
    else after ``sleep_s()`` seconds (read in a thread) or when woken; once
    woken, ``settle_s`` more, so that a burst of commits is one round."""
    loop = asyncio.get_running_loop()

    def woken() -> None:  # from a committing thread
        loop.call_soon_threadsafe(wake.set)

    db.on_outbox_commit(woken)
    listener = None if db.is_sqlite else asyncio.create_task(listen(db, wake.set, log))
    try:
        while not stop.is_set():
            wake.clear()
            try:
                if await round_once():
                    continue
                sleep = await asyncio.to_thread(sleep_s)
            except Exception as e:  # the database went away: try again later
                log.error("worker round failed: %s", type(e).__name__)
                sleep = min(poll_s, 5.0)
            if sleep > 0:
                await first(wake, stop, timeout=sleep)
            if settle_s and wake.is_set():
                await first(stop, stop, timeout=settle_s)
    finally:
        db.off_outbox_commit(woken)
        if listener is not None:
            listener.cancel()
