"""The delivery worker: from the outbox to the endpoints, at least once.

One loop per worker process (``calserver serve`` runs one in process,
``calserver worker`` runs one alone; several may share one PostgreSQL
database).  Each round, in one short write transaction, it hands pending
outbox events to their endpoints and claims due deliveries (pushed a lease
ahead); then it builds the bodies (a read transaction), sends them at once,
and logs every attempt with what follows (delivered, retried later, given
up; a 410 disables the endpoint) in one more write transaction.  No
transaction is open while a request is on the wire.

It sleeps until woken: by this process's commits of outbox events (the
signal ``Database.on_outbox_commit`` gives), by PostgreSQL's NOTIFY from
any process (LISTEN), or when the next retry is due; ``poll_s`` bounds the
sleep as a safety net (a worker process of its own on SQLite has no other
signal).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import aiohttp

from storage import deliveries, wakeup
from storage.database import Database
from storage.outbox import now_ms
from webhooks import delivery, payload, signing
from webhooks.retry import RetryPolicy
from webhooks.targets import TargetPolicy

log = logging.getLogger("calserver.webhooks")


@dataclass(frozen=True)
class WorkerSettings:
    policy: TargetPolicy
    timeout_s: float = 10.0
    retry: RetryPolicy = RetryPolicy()
    poll_s: float = 30.0
    batch: int = 100

    @property
    def lease_ms(self) -> int:
        """How long a claimed delivery is someone's: past it, another worker
        may send it again (its sender died)."""
        return int((2 * self.timeout_s + 10) * 1000)


class Worker:
    def __init__(self, db: Database, settings: WorkerSettings) -> None:
        self.db = db
        self.settings = settings
        self._wake = asyncio.Event()

    def _take(self) -> list[deliveries.Claimed]:
        with self.db.transaction(write=True) as conn:
            now = now_ms()
            deliveries.dispatch(conn, now)
            return deliveries.claim(conn, now, self.settings.lease_ms, self.settings.batch)

    def _bodies(self, claimed: list[deliveries.Claimed]) -> dict[int, bytes]:
        with self.db.transaction(write=False) as conn:
            return payload.bodies(conn, [c.event for c in claimed])

    def _record(self, results: list[tuple[deliveries.Claimed, delivery.Outcome]]) -> None:
        rows = []
        for claimed, outcome in results:
            retry_at = None
            if not outcome.delivered and not outcome.gone:
                retry_at = self.settings.retry.next_attempt_ms(
                    claimed.attempt, claimed.created_ms, now_ms(), outcome.retry_after_ms
                )
            rows.append(
                deliveries.Result(claimed.delivery_id, outcome.attempt, outcome.delivered, retry_at)
            )
        with self.db.transaction(write=True) as conn:
            deliveries.record(conn, rows)
            for claimed, outcome in results:
                if outcome.gone:
                    deliveries.disable_endpoint(
                        conn, claimed.endpoint["id"], "the target answered 410 Gone"
                    )
                    log.warning("webhook endpoint %s disabled: 410 Gone", claimed.endpoint["id"])

    def _sleep_s(self) -> float:
        with self.db.transaction(write=False) as conn:
            if deliveries.has_pending_events(conn):
                return 0.0
            due = deliveries.next_due_ms(conn)
        if due is None:
            return self.settings.poll_s
        return max(0.0, min(self.settings.poll_s, (due - now_ms()) / 1000))

    async def _send(
        self, client: aiohttp.ClientSession, claimed: deliveries.Claimed, body: bytes
    ) -> tuple[deliveries.Claimed, delivery.Outcome]:
        headers = signing.signed_headers(
            signing.secrets_in_force(claimed.endpoint), claimed.event.id, body
        )
        outcome = await delivery.send(
            client,
            self.settings.policy,
            claimed.endpoint["target_url"],
            body,
            headers,
            self.settings.timeout_s,
        )
        return claimed, outcome

    async def round(self, client: aiohttp.ClientSession) -> int:
        """One round: dispatch, claim, send, record; how many were sent."""
        claimed = await asyncio.to_thread(self._take)
        if not claimed:
            return 0
        bodies = await asyncio.to_thread(self._bodies, claimed)
        results = await asyncio.gather(
            *(self._send(client, c, bodies[c.event.id]) for c in claimed)
        )
        await asyncio.to_thread(self._record, list(results))
        return len(claimed)

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        async with delivery.session(self.settings.policy, self.settings.batch) as client:
            await wakeup.serve(
                self.db,
                self._wake,
                stop,
                lambda: self.round(client),
                self._sleep_s,
                self.settings.poll_s,
                log,
            )
