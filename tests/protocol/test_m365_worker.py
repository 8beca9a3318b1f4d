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
from pathlib import Path

import pytest
from sqlalchemy import select

from m365.event import uid_of
from m365.secrets import new_key
from storage.database import Database
from storage.schema import m365_links
from tests.conftest import ADMIN_PASSWORD, CALSERVER, start_server
from tests.m365.graph import Fault, GraphServer
from tests.protocol.pmi_office import book, ok, set_up

pytestmark = pytest.mark.slow
MAILBOX = "alice@pmi.example.org"


def test_a_worker_killed_mid_sync_converges_after_restart(
    database_url: str, tmp_path: Path
) -> None:
    graph = GraphServer(tmp_path).start()
    graph.register_app("tenant", "client", "secret")
    config = (
        f"[m365]\nkey = {new_key()}\nworker = false\nauthority_url = {graph.url}\n"
        f"graph_url = {graph.url}/v1.0\nca_bundle = {graph.ca_path}\ntimeout_seconds = 1\n"
        "retry_first_ms = 200\n[webhooks]\nworker = false\n"
    )
    server = start_server(database_url, tmp_path / "server", extra_config=config)
    (tmp_path / "worker.ini").write_text(config)
    env = {
        **os.environ,
        "CALSERVER_DATABASE_URL": database_url,
        "CALSERVER_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }

    def worker(name: str) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"{name}.log").open("wb")
        command = [str(CALSERVER), "--config", str(tmp_path / "worker.ini"), "worker"]
        return subprocess.Popen(command, stdout=log, stderr=log, env=env)

    first = second = None
    database = Database(database_url)
    try:
        office = set_up(server)
        with office.client() as admin:
            agent = f"/organisations/{office.org}/agents/{office.alice}"
            ok(admin.patch(agent, json={"email": MAILBOX}))
            connection = {"tenant_id": "tenant", "client_id": "client", "client_secret": "secret"}
            ok(admin.put(f"/organisations/{office.org}/m365/connection", json=connection))
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
        server.stop()
        graph.close()


def test_on_postgresql_a_worker_wakes_on_notify_not_on_its_poll(
    pg_url: str, tmp_path: Path
) -> None:
    graph = GraphServer(tmp_path).start()
    graph.register_app("tenant", "client", "secret")
    config = (
        f"[m365]\nkey = {new_key()}\nworker = false\nauthority_url = {graph.url}\n"
        f"graph_url = {graph.url}/v1.0\nca_bundle = {graph.ca_path}\npoll_seconds = 120\n"
        "[webhooks]\nworker = false\n"
    )
    server = start_server(pg_url, tmp_path / "server", extra_config=config)
    (tmp_path / "worker.ini").write_text(config)
    env = {
        **os.environ,
        "CALSERVER_DATABASE_URL": pg_url,
        "CALSERVER_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }
    log = (tmp_path / "worker.log").open("wb")
    command = [str(CALSERVER), "--config", str(tmp_path / "worker.ini"), "worker"]
    worker = subprocess.Popen(command, stdout=log, stderr=log, env=env)
    try:
        office = set_up(server)
        with office.client() as admin:
            agent = f"/organisations/{office.org}/agents/{office.alice}"
            ok(admin.patch(agent, json={"email": MAILBOX}))
            connection = {"tenant_id": "tenant", "client_id": "client", "client_secret": "secret"}
            ok(admin.put(f"/organisations/{office.org}/m365/connection", json=connection))
        time.sleep(3)  # the worker has started, looked once and sleeps its 120 s
        ok(book(office, "09:00"), 201)
        started = time.monotonic()
        graph.wait(lambda: [e for e in graph.events(MAILBOX) if uid_of(e)], timeout=20)
        assert time.monotonic() - started < 20  # woken by NOTIFY, far before its poll
    finally:
        worker.terminate()
        worker.wait(10)
        server.stop()
        graph.close()
