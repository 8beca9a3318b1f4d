"""The push in a worker process of its own (``calserver worker``): killed
with SIGKILL while Graph holds a create it has already applied, the worker
started again converges to one event, not two: its reconciliation at start
adopts the event Graph made, or its retry after the lease carries the same
transactionId.  On PostgreSQL the worker is woken by the server's commits
(LISTEN/NOTIFY), not by its poll."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from m365.event import uid_of
from m365.secrets import new_key
from storage.database import Database
from storage.schema import m365_links
from tests.conftest import ADMIN_PASSWORD, CALSERVER, Server, start_server
from tests.m365.graph import Fault, GraphServer
from tests.protocol.pmi_office import Office, book, ok, set_up

pytestmark = pytest.mark.slow
MAILBOX = "alice@pmi.example.org"


@dataclass
class Push:
    """A server that does not push, a Graph stand-in, and how to start
    ``calserver worker`` processes pushing to it."""

    graph: GraphServer
    server: Server
    folder: Path
    env: dict[str, str]

    def worker(self, name: str) -> subprocess.Popen[bytes]:
        log = (self.folder / f"{name}.log").open("wb")
        command = [str(CALSERVER), "--config", str(self.folder / "worker.ini"), "worker"]
        return subprocess.Popen(command, stdout=log, stderr=log, env=self.env)

    def office(self) -> Office:
        """The PMI office, alice with a mailbox, the organisation connected."""
        office = set_up(self.server)
        with office.client() as admin:
            agent = f"/organisations/{office.org}/agents/{office.alice}"
            ok(admin.patch(agent, json={"email": MAILBOX}))
            connection = {"tenant_id": "tenant", "client_id": "client", "client_secret": "secret"}
            ok(admin.put(f"/organisations/{office.org}/m365/connection", json=connection))
        return office

    def close(self) -> None:
        self.server.stop()
        self.graph.close()


def _push(database_url: str, folder: Path, more: str) -> Push:
    graph = GraphServer(folder).start()
    graph.register_app("tenant", "client", "secret")
    config = (
        f"[m365]\nkey = {new_key()}\nworker = false\nauthority_url = {graph.url}\n"
        f"graph_url = {graph.url}/v1.0\nca_bundle = {graph.ca_path}\n{more}"
        "[webhooks]\nworker = false\n"
    )
    server = start_server(database_url, folder / "server", extra_config=config)
    (folder / "worker.ini").write_text(config)
    env = {
        **os.environ,
        "CALSERVER_DATABASE_URL": database_url,
        "CALSERVER_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }
    return Push(graph, server, folder, env)


def test_a_worker_killed_mid_sync_converges_after_restart(
    database_url: str, tmp_path: Path
) -> None:
    push = _push(database_url, tmp_path, "timeout_seconds = 1\nretry_first_ms = 200\n")
    graph, worker = push.graph, push.worker
    first = second = None
    database = Database(database_url)
    try:
        office = push.office()
        graph.fail(Fault(0, method="POST", hold_s=5))
        first = worker("first")
        ok(book(office, "09:00"), 201)
        graph.wait(lambda: graph.events(MAILBOX))  # applied; its answer is held
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        second = worker("second")

        def converged() -> bool:
            with database.transaction(write=False) as conn:
                link = conn.execute(select(m365_links)).one()
            return not link.dirty and link.graph_id is not None

        graph.wait(converged, timeout=30)
        assert len({p.body for p in graph.requests("POST")}) == 1  # a retry is the same create
        (only,) = [e for e in graph.events(MAILBOX) if uid_of(e)]
        with database.transaction(write=False) as conn:
            assert conn.execute(select(m365_links.c.graph_id)).scalar_one() == only["id"]
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(10)
        database.dispose()
        push.close()


def test_on_postgresql_a_worker_wakes_on_notify_not_on_its_poll(
    pg_url: str, tmp_path: Path
) -> None:
    push = _push(pg_url, tmp_path, "poll_seconds = 120\n")
    worker = push.worker("worker")
    try:
        office = push.office()
        time.sleep(3)  # the worker has started, looked once and sleeps its 120 s
        ok(book(office, "09:00"), 201)
        started = time.monotonic()
        push.graph.wait(lambda: [e for e in push.graph.events(MAILBOX) if uid_of(e)], timeout=20)
        assert time.monotonic() - started < 20  # woken by NOTIFY, far before its poll
    finally:
        worker.terminate()
        worker.wait(10)
        push.close()
