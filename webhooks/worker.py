"""The delivery worker: from the outbox to the endpoints, at least once.

One loop per worker process (``calserver serve`` runs one in process,
``calserver worker`` runs one alone; several may share one PostgreSQL
database).  Each turn, in one short write transaction, it hands pending
outbox events to their endpoints and claims due deliveries (pushed a lease
ahead), leaving out the endpoints it is still sending to.  A claim holds at
most one delivery per (endpoint, record), the head of that record's queue
(``deliveries.claim``): one record's events go one after the other, in
order, across workers too, and one lane sends one request per record, well
within its lease.  Each endpoint's claim becomes a *lane* of its own: its
bodies are built (a read transaction), its requests sent (its records side
by side), and its attempts logged with what follows (delivered, retried
later, given up; a 410 disables the endpoint, a Retry-After holds back all
of the endpoint's deliveries until then) in one more write transaction.
Lanes run side by side, at most ``capacity`` deliveries in flight: a slow
or silent endpoint holds only its own lane, and the loop goes on claiming
for the others.  No transaction is open while a
request is on the wire.

An event whose body cannot be built (a bug, not a passing fault) is given
up at once and logged by its delivery id and the error's class, never its
data; the others go on.

It sleeps until woken: by this process's commits of outbox events (the
signal ``Database.on_outbox_commit`` gives), by PostgreSQL's NOTIFY from
any process (LISTEN), by a lane that finished, or when the next retry is
due; ``poll_s`` bounds the sleep as a safety net (a worker process of its
own on SQLite has no other signal).  Every ``purge_every_s`` (sooner while
there is a backlog) it deletes a small batch of what the retention allows
(``deliveries.purge``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field

import aiohttp

from storage import deliveries, wakeup
from storage.database import Database
from storage.outbox import now_ms
from webhooks import delivery, payload, signing
from webhooks.retry import DAY_MS, RetryPolicy
from webhooks.targets import TargetPolicy

log = logging.getLogger("calserver.webhooks")
# How soon a worker looks again at events still waiting for their deliveries.
PENDING_RECHECK_S = 0.02

Sent = tuple[deliveries.Claimed, delivery.Outcome]


@dataclass(frozen=True)
class WorkerSettings:
    policy: TargetPolicy
    timeout_s: float = 10.0
    retry: RetryPolicy = RetryPolicy()
    poll_s: float = 30.0
    batch: int = 100  # at most this many deliveries claimed at once
    capacity: int = 200  # at most this many in flight, all lanes together
    keep: deliveries.Retention = field(
        default_factory=lambda: deliveries.Retention(30 * DAY_MS, 90 * DAY_MS, 3 * DAY_MS)
    )
    purge_every_s: float = 600.0
    purge_batch: int = 500
    # After a round that found some work but less than a batch (a trickle:
    # each booking's commit wakes the worker), the next waits this long.
    pace_s: float = 0.1

    @property
    def lease_ms(self) -> int:
        """How long a claimed delivery is someone's: past it, another worker
        may send it again (its sender died)."""
        return int((2 * self.timeout_s + 10) * 1000)


class Worker:
    def __init__(self, db: Database, settings: WorkerSettings) -> None:
        self.db = db
        self.settings = settings
        self.delivered = 0  # requests answered 2xx since it started
        self._wake = asyncio.Event()
        self._busy: dict[int, int] = {}  # endpoint id -> deliveries in flight
        self._lanes: set[asyncio.Task[None]] = set()
        self._next_purge = 0.0
        self._paced_until = 0.0  # time.monotonic() before which no round starts

    @property
    def in_flight(self) -> int:
        return sum(self._busy.values())

    def _take(self, limit: int, busy: frozenset[int]) -> tuple[int, list[deliveries.Claimed]]:
        """The events dispatched, and the deliveries claimed."""
        with self.db.transaction(write=True) as conn:
            now = now_ms()
            dispatched = deliveries.dispatch(conn, now)
            return dispatched, deliveries.claim(conn, now, self.settings.lease_ms, limit, busy)

    def _bodies(self, claimed: list[deliveries.Claimed]) -> dict[int, bytes | payload.Unbuilt]:
        with self.db.transaction(write=False) as conn:
            return payload.bodies(conn, [c.event for c in claimed])

    def _record(self, results: list[Sent]) -> None:
        rows = []
        for claimed, outcome in results:
            retry_at = None
            if not (outcome.delivered or outcome.gone or outcome.permanent):
                retry_at = self.settings.retry.next_attempt_ms(
                    claimed.attempt, claimed.created_ms, now_ms(), outcome.retry_after_ms
                )
            rows.append(
                deliveries.Result(
                    claimed.delivery_id,
                    claimed.leased_until_ms,
                    outcome.attempt,
                    outcome.delivered,
                    retry_at,
                )
            )
        with self.db.transaction(write=True) as conn:
            deliveries.record(conn, rows)
            for claimed, outcome in results:
                endpoint_id = claimed.endpoint["id"]
                if outcome.gone:
                    deliveries.disable_endpoint(conn, endpoint_id, "the target answered 410 Gone")
                    log.warning("webhook endpoint %s disabled: 410 Gone", endpoint_id)
                elif outcome.retry_after_ms is not None:
                    until = outcome.attempt.at_ms + min(outcome.retry_after_ms, DAY_MS)
                    deliveries.hold_endpoint(conn, endpoint_id, until)
                if outcome.permanent:
                    log.warning(
                        "webhook delivery %s failed for good: %s",
                        claimed.delivery_id,
                        outcome.attempt.error,
                    )

    def _sleep_s(self, busy: frozenset[int]) -> float:
        with self.db.transaction(write=False) as conn:
            if deliveries.has_pending_events(conn):
                # New since this round, or another worker is dispatching (on
                # PostgreSQL one at a time): look again shortly, not in a spin.
                return PENDING_RECHECK_S
            due = deliveries.next_due_ms(conn, busy)
        return wakeup.sleep_s(due, self.settings.poll_s)

    def _purge(self) -> int:
        with self.db.transaction(write=True) as conn:
            return deliveries.purge(conn, now_ms(), self.settings.keep, self.settings.purge_batch)

    async def _purge_if_due(self) -> None:
        """One batch of clean-up every ``purge_every_s``; the next batch at
        once while a full one was deleted (a backlog, after an upgrade)."""
        if time.monotonic() < self._next_purge:
            return
        done = await asyncio.to_thread(self._purge)
        full = done >= self.settings.purge_batch
        self._next_purge = time.monotonic() + (0 if full else self.settings.purge_every_s)

    async def _send(
        self, client: aiohttp.ClientSession, claimed: deliveries.Claimed, body: bytes
    ) -> Sent:
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

    async def _deliver(
        self,
        client: aiohttp.ClientSession,
        claimed: deliveries.Claimed,
        body: bytes | payload.Unbuilt,
    ) -> Sent:
        if isinstance(body, payload.Unbuilt):
            return claimed, _unbuilt(claimed, body)
        return await self._send(client, claimed, body)

    async def lane(self, client: aiohttp.ClientSession, claimed: list[deliveries.Claimed]) -> int:
        """Send one endpoint's claim (one delivery per record, side by side)
        and log it; how many were sent."""
        bodies = await asyncio.to_thread(self._bodies, claimed)
        sent = await asyncio.gather(
            *(self._deliver(client, c, bodies[c.event.id]) for c in claimed)
        )
        await asyncio.to_thread(self._record, list(sent))
        self.delivered += sum(1 for _, outcome in sent if outcome.delivered)
        return len(sent)

    async def _run_lane(
        self, client: aiohttp.ClientSession, endpoint_id: int, claimed: list[deliveries.Claimed]
    ) -> None:
        try:
            await self.lane(client, claimed)
        except Exception as e:  # the database went away: the leases bring them back
            log.error("webhook worker: a delivery lane failed: %s", type(e).__name__)
        finally:
            del self._busy[endpoint_id]
            self._wake.set()

    def _start_lanes(
        self, client: aiohttp.ClientSession, claimed: list[deliveries.Claimed]
    ) -> None:
        by_endpoint: dict[int, list[deliveries.Claimed]] = defaultdict(list)
        for c in claimed:
            by_endpoint[c.endpoint["id"]].append(c)
        for endpoint_id, lane in by_endpoint.items():
            self._busy[endpoint_id] = len(lane)
            task = asyncio.create_task(self._run_lane(client, endpoint_id, lane))
            self._lanes.add(task)
            task.add_done_callback(self._lanes.discard)

    async def round(self, client: aiohttp.ClientSession) -> int:
        """Claim what this worker has room for and start its lanes; how many
        deliveries were claimed (0: nothing due, or no room)."""
        room = min(self.settings.batch, self.settings.capacity - self.in_flight)
        if room <= 0:
            return 0
        dispatched, claimed = await asyncio.to_thread(self._take, room, frozenset(self._busy))
        if (dispatched or claimed) and len(claimed) < room:
            self._paced_until = time.monotonic() + self.settings.pace_s
        self._start_lanes(client, claimed)
        return len(claimed)

    async def _pace(self, stop: asyncio.Event) -> None:
        """Wait out the pace a trickle of work set (see ``round``).  In the
        server's process each booking's commit wakes the worker: a round per
        booking (dispatch and claim, the bodies, the log of attempts: two
        write transactions) would compete with the requests for SQLite's one
        writer and the process's CPU.  Paced, the events of a burst of
        bookings go out in one round every ``pace_s``.  An idle worker's
        first event, and a backlog (a full claim), go at once."""
        wait = self._paced_until - time.monotonic()
        if wait > 0:
            await asyncio.wait([asyncio.create_task(stop.wait())], timeout=wait)

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()

        def woken() -> None:  # from a committing thread
            loop.call_soon_threadsafe(self._wake.set)

        self.db.on_outbox_commit(woken)
        listener = (
            None
            if self.db.is_sqlite
            else asyncio.create_task(wakeup.listen(self.db, self.wake, log))
        )
        try:
            async with delivery.session(self.settings.policy, self.settings.capacity) as client:
                while not stop.is_set():
                    await self._pace(stop)
                    self._wake.clear()
                    sleep = self.settings.poll_s
                    try:
                        if await self.round(client):
                            continue
                        if self.in_flight < self.settings.capacity:
                            await self._purge_if_due()
                            sleep = await asyncio.to_thread(self._sleep_s, frozenset(self._busy))
                    except Exception as e:  # the database went away: try again later
                        log.error("webhook worker round failed: %s", type(e).__name__)
                        sleep = min(self.settings.poll_s, 5.0)
                    if sleep > 0:
                        await wakeup.first(self._wake, stop, timeout=sleep)
                if self._lanes:  # let what is on the wire be answered and logged
                    await asyncio.wait(self._lanes, timeout=self.settings.timeout_s + 5)
        finally:
            self.db.off_outbox_commit(woken)
            if listener is not None:
                listener.cancel()


def _unbuilt(claimed: deliveries.Claimed, body: payload.Unbuilt) -> delivery.Outcome:
    """The outcome of a delivery whose body could not be built: given up."""
    log.error(
        "webhook delivery %s given up: its body could not be built (%s)",
        claimed.delivery_id,
        body.error,
    )
    attempt = deliveries.Attempt(
        now_ms(), 0, None, f"the request body could not be built ({body.error})", None
    )
    return delivery.Outcome(attempt, False, False, None, permanent=True)
