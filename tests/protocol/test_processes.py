"""Several server processes on one database, and a server killed mid-write."""

from __future__ import annotations

import os
import signal
import threading
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from icalendar import Calendar

from tests.conftest import ADMIN_PASSWORD, Server, start_server
from tests.ics import event

pytestmark = pytest.mark.slow
AUTH = ("admin", ADMIN_PASSWORD)
SYNC = (
    '<sync-collection xmlns="DAV:"><sync-token>{token}</sync-token>'
    "<sync-level>1</sync-level><prop><getetag/></prop></sync-collection>"
)


def _put(client: httpx.Client, base: str, n: int, summary: str = "RDV") -> httpx.Response:
    body = event(f"p{n}", datetime(2027, 1, 4, 8, 0) + timedelta(hours=n), summary=summary)
    return client.put(
        f"{base}admin/agenda/p{n}.ics",
        content=body.encode(),
        headers={"Content-Type": "text/calendar"},
    )


def _sync(client: httpx.Client, base: str, token: str = "") -> tuple[str, dict[str, str]]:
    answer = client.request("REPORT", base + "admin/agenda/", content=SYNC.format(token=token))
    assert answer.status_code == 207, answer.text
    root = ET.fromstring(answer.content)
    found = {}
    for response in root.iter("{DAV:}response"):
        href = response.findtext("{DAV:}href")
        found[href] = response.findtext(".//{DAV:}getetag") or "deleted"
    return root.findtext("{DAV:}sync-token"), found


def _ctag(client: httpx.Client, base: str) -> str:
    answer = client.request(
        "PROPFIND",
        base + "admin/agenda/",
        headers={"Depth": "0"},
        content=b'<propfind xmlns="DAV:" xmlns:CS="http://calendarserver.org/ns/">'
        b"<prop><CS:getctag/></prop></propfind>",
    )
    return ET.fromstring(answer.content).findtext(".//{http://calendarserver.org/ns/}getctag")


def test_two_processes_keep_tokens_and_ctags_consistent(database_url: str, tmp_path: Path) -> None:
    first = start_server(database_url, tmp_path / "a")
    second = start_server(database_url, tmp_path / "b")
    try:
        bases = [first.dav, second.dav]
        with httpx.Client(auth=AUTH) as client:
            token_before, _ = _sync(client, first.dav)

        def write(n: int) -> int:
            with httpx.Client(auth=AUTH) as client:
                return _put(client, bases[n % 2], n).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(write, range(120))) == {201}
        with httpx.Client(auth=AUTH) as client:
            token_a, items_a = _sync(client, first.dav)
            token_b, items_b = _sync(client, second.dav)
            assert token_a == token_b
            assert items_a == items_b and len(items_a) == 120
            assert _ctag(client, first.dav) == _ctag(client, second.dav)
            # A token handed out by one process is understood by the other.
            _, delta = _sync(client, second.dav, token_before)
            assert len(delta) == 120
            assert _put(client, first.dav, 7, summary="changed").status_code == 204
            token_c, delta = _sync(client, second.dav, token_a)
            assert list(delta) == ["/dav/admin/agenda/p7.ics"]
            assert token_c != token_a
            assert _ctag(client, first.dav) == _ctag(client, second.dav)
    finally:
        first.stop()
        second.stop()


def test_killed_server_keeps_every_acknowledged_put(database_url: str, tmp_path: Path) -> None:
    server = start_server(database_url, tmp_path / "victim")
    acknowledged: dict[str, str] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def writer(worker: int) -> None:
        with httpx.Client(auth=AUTH, timeout=5) as client:
            for n in range(worker * 10_000, worker * 10_000 + 2_000):
                if stop.is_set():
                    return
                try:
                    answer = _put(client, server.dav, n)
                except httpx.TransportError:
                    return
                if answer.status_code == 201:
                    with lock:
                        acknowledged[f"/dav/admin/agenda/p{n}.ics"] = answer.headers["ETag"]

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(acknowledged) < 60 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()
    stop.set()
    for t in threads:
        t.join()
    assert len(acknowledged) >= 60

    restarted: Server = start_server(database_url, tmp_path / "restarted")
    try:
        with httpx.Client(auth=AUTH) as client:
            _, stored = _sync(client, restarted.dav)
            for href, etag in acknowledged.items():
                assert stored.get(href) == etag, href
            # Whatever was stored (acknowledged or not) is whole and parses.
            for href in stored:
                body = client.get(restarted.url + href)
                assert body.status_code == 200
                Calendar.from_ical(body.text)
    finally:
        restarted.stop()
