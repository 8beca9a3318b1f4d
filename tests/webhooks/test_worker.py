"""The delivery worker in process, on a real database and a real receiver on
loopback: a slow endpoint holds only its own lane, one record's events go
in order, a Retry-After holds back the whole endpoint, an event whose body
cannot be built is given up alone, and the retention is applied as it
runs; its log never shows a secret."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace

import pytest
from sqlalchemy import insert

from storage import agents, deliveries, outbox, scheduling
from storage import webhooks as endpoints
from storage.database import Database
from storage.schema import outbox_events
from tests.webhooks.receiver import Answer, Receiver
from webhooks.retry import RetryPolicy
from webhooks.targets import TargetPolicy, networks
from webhooks.worker import Worker, WorkerSettings

POLICY = TargetPolicy(allow_http=True, allowed_networks=networks(["127.0.0.1"]))
# A long poll: whatever arrives below comes from a wake-up or a lane, not a poll.
SETTINGS = WorkerSettings(POLICY, timeout_s=5, retry=RetryPolicy(first_ms=200), poll_s=30)


@dataclass
class Org:
    db: Database
    id: int
    receiver: Receiver

    def endpoint(self, path: str, models: list[str]) -> int:
        with self.db.transaction(write=True) as conn:
            created = endpoints.create_endpoint(
                conn, self.id, self.receiver.url(path), SECRET, models
            )
        self.receiver.secrets.append(SECRET)
        return created["id"]

    def lieu(self, name: str) -> dict:
        with self.db.transaction(write=True) as conn:
            return scheduling.create_lieu(
                conn, {"organisation_id": self.id, "name": name, "address": "1 rue A"}
            )

    def log(self, endpoint_id: int) -> list[dict]:
        with self.db.transaction(write=False) as conn:
            return deliveries.deliveries_of(conn, endpoint_id)


SECRET = "whsec_" + "B" * 43 + "="


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver().start()
    yield found
    found.close()


@pytest.fixture
def org(db: Database, receiver: Receiver) -> Org:
    with db.transaction(write=True) as conn:
        return Org(db, agents.create_organisation(conn, "Mairie", "mairie"), receiver)


@pytest.fixture
async def worker(db: Database) -> AsyncIterator[Worker]:
    started = Worker(db, SETTINGS)
    stop = asyncio.Event()
    task = asyncio.create_task(started.run(stop))
    yield started
    stop.set()
    await asyncio.wait_for(task, 15)


async def arrived(receiver: Receiver, path: str, count: int, timeout: float = 10) -> list:
    """The requests at ``path`` once there are ``count`` (the event loop runs on)."""
    deadline = time.monotonic() + timeout
    while len(receiver.on(path)) < count:
        assert time.monotonic() < deadline, f"{path}: {len(receiver.on(path))} of {count}"
        await asyncio.sleep(0.02)
    return receiver.on(path)


async def test_a_slow_endpoint_holds_only_its_own_lane(org: Org, worker: Worker) -> None:
    org.receiver.answer("/slow", Answer(200, delay=3))
    org.endpoint("/slow", ["lieu"])
    org.endpoint("/fast", ["lieu"])
    await asyncio.to_thread(org.lieu, "Annexe")
    await arrived(org.receiver, "/fast", 1)
    (first_slow,) = await arrived(org.receiver, "/slow", 1)
    await asyncio.to_thread(org.lieu, "Annexe Nord")
    await arrived(org.receiver, "/fast", 2, timeout=1.5)  # while /slow still waits
    assert len(org.receiver.on("/slow")) == 1
    second_slow = (await arrived(org.receiver, "/slow", 2))[1]
    assert second_slow.at - first_slow.at >= 2.9  # its own deliveries wait for it
    names = [r.json["data"]["name"] for r in org.receiver.on("/slow")]
    assert names == ["Annexe", "Annexe Nord"]
    assert all(r.verified for r in org.receiver.received)


# How long the receiver takes to answer in the ordering test: long enough that
# "sent after the answer" and "sent beside it" stay apart on a loaded machine.
ANSWER_S = 1.0


async def test_one_records_events_are_sent_in_order(org: Org, worker: Worker) -> None:
    org.receiver.answer("/ordered", *[Answer(200, delay=ANSWER_S)] * 4)
    org.endpoint("/ordered", ["lieu"])

    def three_events() -> None:
        with org.db.transaction(write=True) as conn:
            lieu = scheduling.create_lieu(
                conn, {"organisation_id": org.id, "name": "A", "address": "1 rue A"}
            )
            scheduling.update_lieu(conn, lieu["id"], {"name": "B"})
            scheduling.update_lieu(conn, lieu["id"], {"name": "C"})
            scheduling.create_lieu(
                conn, {"organisation_id": org.id, "name": "Other", "address": "2 rue B"}
            )

    await asyncio.to_thread(three_events)
    received = await arrived(org.receiver, "/ordered", 4)
    chain = [r for r in received if r.json["data"]["name"] != "Other"]
    assert [r.json["meta"]["sequence"] for r in chain] == [1, 2, 3]
    # The second was sent only once the first was answered; the other record
    # did not wait for them.
    assert all(b.at - a.at >= 0.9 * ANSWER_S for a, b in zip(chain, chain[1:], strict=False))
    other = next(r for r in received if r.json["data"]["name"] == "Other")
    assert other.at - chain[0].at < 0.8 * ANSWER_S


async def test_an_event_whose_body_cannot_be_built_is_given_up_alone(
    org: Org, worker: Worker, caplog: pytest.LogCaptureFixture
) -> None:
    hook = org.endpoint("/hook", ["rdv", "lieu"])
    secret_data = {"uuid": "Camille-Durand-rdv", "status": "unknown"}  # no times: unbuildable

    def broken_then_fine() -> None:
        with org.db.transaction(write=True) as conn:
            conn.execute(
                insert(outbox_events).values(
                    created_ms=outbox.now_ms(), organisation_id=org.id, model="rdv",
                    record_id=999, event="created", sequence=1, changes='["created"]',
                    data=json.dumps(secret_data),
                )
            )  # fmt: skip
            outbox.announce(conn)
        org.lieu("Annexe")

    with caplog.at_level(logging.INFO, logger="calserver"):
        await asyncio.to_thread(broken_then_fine)
        (sent,) = await arrived(org.receiver, "/hook", 1)
        assert sent.json["data"]["name"] == "Annexe"
        deadline = time.monotonic() + 5
        while {d["state"] for d in org.log(hook)} != {"delivered", "failed"}:
            assert time.monotonic() < deadline, org.log(hook)
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # it is not claimed again
    failed = next(d for d in org.log(hook) if d["state"] == "failed")
    assert failed["attempts"] == 1 and failed["record_id"] == 999
    (attempt,) = failed["attempts_log"]
    assert attempt["error"] == "the request body could not be built (KeyError)"
    assert f"webhook delivery {failed['id']} given up" in caplog.text
    assert "Camille" not in caplog.text and len(org.receiver.received) == 1
    assert SECRET not in caplog.text


async def test_a_retry_after_holds_back_the_endpoints_other_deliveries(
    org: Org, worker: Worker, caplog: pytest.LogCaptureFixture
) -> None:
    org.receiver.answer("/busy", Answer(429, {"Retry-After": "1"}))
    hook = org.endpoint("/busy", ["lieu"])
    with caplog.at_level(logging.INFO, logger="calserver"):
        await asyncio.to_thread(org.lieu, "Annexe")
        (refused,) = await arrived(org.receiver, "/busy", 1)
        await asyncio.to_thread(org.lieu, "Annexe Nord")  # another record, due at once
        received = await arrived(org.receiver, "/busy", 3)
    # Neither the one answered 429 nor the other record went before the second.
    assert all(r.at - refused.at >= 0.95 for r in received[1:])
    assert {r.json["data"]["name"] for r in received[1:]} == {"Annexe", "Annexe Nord"}
    deadline = time.monotonic() + 5
    while {d["state"] for d in org.log(hook)} != {"delivered"}:
        assert time.monotonic() < deadline, org.log(hook)
        await asyncio.sleep(0.02)
    assert SECRET not in caplog.text


async def test_the_worker_applies_the_retention_as_it_runs(
    db: Database, org: Org, receiver: Receiver
) -> None:
    keep = deliveries.Retention(delivered_ms=0, failed_ms=0, waiting_ms=0)
    settings = WorkerSettings(POLICY, poll_s=0.2, keep=keep, purge_every_s=0.1)
    hook = org.endpoint("/hook", ["lieu"])
    worker = Worker(db, settings)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.to_thread(org.lieu, "Annexe")
        await arrived(receiver, "/hook", 1)
        deadline = time.monotonic() + 5
        while org.log(hook):  # delivered, then purged with its event
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        with db.transaction(write=False) as conn:
            assert not [e for e in outbox.events(conn) if e.model == "lieu"]
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
    assert worker.delivered == 1


async def _running(worker: Worker) -> tuple[asyncio.Event, asyncio.Task[None]]:
    stop = asyncio.Event()
    return stop, asyncio.create_task(worker.run(stop))


async def test_a_trickle_of_commits_goes_out_in_paced_rounds(db: Database, org: Org) -> None:
    """Each commit wakes the worker (in the server, each booking's): an idle
    worker's first event goes at once, the ones written within its pace go
    together one pace after that round, not in a round per commit."""
    org.endpoint("/paced", ["lieu"])
    stop, task = await _running(Worker(db, replace(SETTINGS, pace_s=1.0)))
    try:
        await asyncio.sleep(1.1)  # its first round dispatched the set-up's events: paced
        written = time.time()
        await asyncio.to_thread(org.lieu, "L0")
        await arrived(org.receiver, "/paced", 1, timeout=0.9)
        for n in range(1, 4):
            await asyncio.to_thread(org.lieu, f"L{n}")
            await asyncio.sleep(0.05)
        later = [r.at for r in (await arrived(org.receiver, "/paced", 4))[1:]]
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
    assert min(later) >= written + 1.0  # held for the pace...
    assert max(later) - min(later) < 0.5  # ...then sent in one round


async def test_a_backlog_is_not_paced(db: Database, org: Org) -> None:
    """Full claims follow each other at once: the pace only gathers a trickle."""
    org.endpoint("/backlog", ["lieu"])

    def five_lieux() -> None:
        with db.transaction(write=True) as conn:
            for n in range(5):
                scheduling.create_lieu(
                    conn, {"organisation_id": org.id, "name": f"L{n}", "address": "1 rue A"}
                )

    stop, task = await _running(Worker(db, replace(SETTINGS, pace_s=2.0, batch=2)))
    try:
        await asyncio.sleep(2.1)  # its first round dispatched the set-up's events: paced
        written = time.time()
        await asyncio.to_thread(five_lieux)
        arrivals = [r.at for r in await arrived(org.receiver, "/backlog", 5, timeout=1.9)]
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
    assert max(arrivals) < written + 2.0
