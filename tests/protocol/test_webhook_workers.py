"""Delivery workers as processes of their own (``calserver worker``): one
killed with SIGKILL mid-delivery loses nothing, and two on one PostgreSQL
database, woken by NOTIFY (they poll only every 30 s), share the work and
deliver each event exactly once."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import ADMIN_PASSWORD, CALSERVER, start_server
from tests.protocol.pmi_office import Office, book, ok, set_up, subscribe
from tests.webhooks.receiver import Answer, Receiver

pytestmark = pytest.mark.slow

CONFIG = (
    "[webhooks]\nallow_http = true\nallowed_networks = 127.0.0.1\nworker = false\n"
    "retry_first_ms = 200\ntimeout_seconds = 3\npoll_seconds = 30\n"
)
SLOTS = ["09:00", "09:30", "10:00", "10:30", "11:00", "11:30"]
# A delivery this soon was woken (NOTIFY), not found by the 30 s poll; a third
# of the poll leaves room for a loaded CI machine.
AT_ONCE_S = 10.0


@pytest.fixture
def office(database_url: str, tmp_path: Path) -> Iterator[Office]:
    server = start_server(database_url, tmp_path / "server", extra_config=CONFIG)
    yield set_up(server)
    server.stop()


def _worker(
    office: Office, tmp_path: Path, name: str, settings: str = CONFIG
) -> subprocess.Popen[bytes]:
    config = tmp_path / f"{name}.ini"
    config.write_text(settings)
    env = {
        **os.environ,
        "CALSERVER_DATABASE_URL": office.server.database_url,
        "CALSERVER_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }
    log = (tmp_path / f"{name}.log").open("wb")
    return subprocess.Popen(
        [str(CALSERVER), "--config", str(config), "worker"], stdout=log, stderr=log, env=env
    )


def _log(office: Office) -> list[dict]:
    with office.client() as admin:
        base = f"/organisations/{office.org}/webhook_endpoints"
        (endpoint,) = ok(admin.get(base))
        return ok(admin.get(f"{base}/{endpoint['id']}/deliveries"))


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        process.wait(10)


def test_a_worker_killed_mid_delivery_loses_nothing(
    office: Office, receiver: Receiver, tmp_path: Path
) -> None:
    subscribe(office, receiver, "/hook", ["rdv"])
    receiver.answer("/hook", Answer(200, delay=2.5))  # the first answer comes late
    for at in SLOTS:
        ok(book(office, at), 201)
    first = _worker(office, tmp_path, "first")
    try:
        receiver.wait_for("/hook", 1)
        first.send_signal(signal.SIGKILL)  # while the first request waits for its answer
        first.wait(10)
    finally:
        _stop(first)
    second = _worker(office, tmp_path, "second")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the log says every one was answered
            states = [d["state"] for d in _log(office)]
            if states == ["delivered"] * len(SLOTS):
                break
            time.sleep(0.2)
    finally:
        _stop(second)
    assert states == ["delivered"] * len(SLOTS)
    ids = {r.headers["webhook-id"] for r in receiver.on("/hook")}
    assert len(ids) == len(SLOTS)  # every event received at least once
    # The first worker died with its claims unrecorded: they were sent again
    # once their lease ran out (at least once, not exactly once).
    assert len(receiver.on("/hook")) > len(SLOTS)
    assert all(r.verified for r in receiver.received)


def _delivered_by(tmp_path: Path, name: str) -> int:
    """What a stopped worker process says it delivered."""
    said = re.search(r"it delivered (\d+) webhook requests", (tmp_path / f"{name}.log").read_text())
    assert said, (tmp_path / f"{name}.log").read_text()
    return int(said.group(1))


def test_two_workers_on_postgresql_share_the_work_and_deliver_each_event_once(
    pg_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    server = start_server(pg_url, tmp_path / "server", extra_config=CONFIG)
    try:
        office = set_up(server)
        subscribe(office, receiver, "/hook", ["rdv"])
        expected = len(SLOTS) * 5
        # Each answer takes a while: a worker sending to the endpoint leaves
        # the next events to the other.
        receiver.answer("/hook", *[Answer(200, delay=0.2)] * expected)
        workers = [_worker(office, tmp_path, name) for name in ("a", "b")]
        booked = []
        try:
            time.sleep(2)  # both are up and listening
            with office.client("alice") as alice:
                for weekday in range(5):
                    day = office.day + timedelta(days=weekday)
                    for at in SLOTS:
                        booking = {
                            "agent_id": office.alice,
                            "motif_id": office.motif,
                            "lieu_id": office.lieu,
                            "starts_at": f"{day.isoformat()}T{at}",
                        }
                        booked_at = time.time()
                        booked.append(ok(alice.post("/rdvs", json=booking), 201)["id"])
                        if len(booked) == 1:  # NOTIFY wakes them, not the 30 s poll
                            (first,) = receiver.wait_for("/hook", 1, timeout=AT_ONCE_S)
                            assert first.at - booked_at < AT_ONCE_S
            receiver.wait_for("/hook", expected, timeout=60)
            time.sleep(1)  # a duplicate would come now
        finally:
            for worker in workers:
                _stop(worker)
        received = receiver.on("/hook")
        assert Counter(r.json["data"]["uuid"] for r in received) == Counter(booked)
        assert len({r.headers["webhook-id"] for r in received}) == expected == len(received)
        assert all(r.verified for r in received)
        by_worker = [_delivered_by(tmp_path, name) for name in ("a", "b")]
        assert sum(by_worker) == expected and min(by_worker) > 0, by_worker
    finally:
        server.stop()
