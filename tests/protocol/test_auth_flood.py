"""A normal client at work beside hostile load keeps its pace: sixteen clients
sending wrong passwords in a loop, alone and together with four créneaux
searches as heavy as allowed.  On the code before the auth gate the agent's
PROPFIND took over 4 seconds under the flood alone (argon2 for every wrong
password and a one-second sleep after each, both in the CalDAV threads).

The hostile clients run in a process of their own (``tests.protocol.load``),
so that their threads do not slow the measuring client by holding its
interpreter lock."""

from __future__ import annotations

import multiprocessing
import secrets
import statistics
import time
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, Server
from tests.protocol import load
from tests.protocol.office import ok

FLOOD_SECONDS = 12.0


def _pace(requests: list[Callable[[], httpx.Response]], seconds: float) -> list[float]:
    """Latencies of ``requests`` made in turn, one every 50 ms, for ``seconds``."""
    latencies: list[float] = []
    end = time.monotonic() + seconds
    turn = 0
    while time.monotonic() < end:
        request = requests[turn % len(requests)]
        turn += 1
        started = time.monotonic()
        answer = request()
        latencies.append(time.monotonic() - started)
        assert answer.status_code in (200, 207), answer.text
        time.sleep(0.05)
    return latencies


def _beside_load(
    server: Server,
    requests: list[Callable[[], httpx.Response]],
    searching: load.SearchingAgent | None = None,
) -> tuple[list[float], list[float], Counter]:
    """The normal client's latencies at rest and under the hostile process's
    load, and the hostile answers by kind and status."""
    spawn = multiprocessing.get_context("spawn")
    results = spawn.Queue()
    at_rest = _pace(requests, 3.0)
    hostile = spawn.Process(
        target=load.run, args=(server.url, FLOOD_SECONDS + 3, results, searching)
    )
    hostile.start()
    try:
        time.sleep(2.0)  # the process starts, the load builds up
        latencies = _pace(requests, FLOOD_SECONDS)
        statuses = Counter(results.get(timeout=60))
    finally:
        hostile.join(60)
        if hostile.is_alive():
            hostile.kill()
    return at_rest, latencies, statuses


def _p95(at_rest: list[float], latencies: list[float], statuses: Counter) -> float:
    p95 = statistics.quantiles(latencies, n=20)[-1]
    print(
        f"\nnormal client at rest: median {statistics.median(at_rest) * 1000:.0f} ms; "
        f"under load: {len(latencies)} requests, median "
        f"{statistics.median(latencies) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms; "
        f"hostile answers: {dict(statuses)}"
    )
    five_hundreds = {s for s in statuses if int(s.split()[1]) >= 500}
    assert five_hundreds <= {"attack 503", "search 503"}  # busy, or a search out of time
    assert statuses["attack 401"] > 0  # hashes did run (the rest: 503 busy, or 429)
    return p95


@pytest.mark.slow
def test_agent_keeps_its_pace_during_a_wrong_password_flood(server: Server) -> None:
    with httpx.Client(auth=("admin", ADMIN_PASSWORD), timeout=30) as agent:

        def propfind() -> httpx.Response:
            return agent.request("PROPFIND", server.dav + "admin/", headers={"Depth": "1"})

        p95 = _p95(*_beside_load(server, [propfind]))
    assert p95 < load.p95_bound(server, searches=False)


@pytest.mark.slow
def test_normal_client_keeps_its_pace_beside_the_flood_and_heavy_searches(
    server: Server,
) -> None:
    """CalDAV, the API and the feed, in turn, while sixteen clients guess
    passwords and four search créneaux as heavily as allowed."""
    searching = load.searching_agent(server, f"carol-{secrets.token_hex(3)}")
    with (
        httpx.Client(auth=("admin", ADMIN_PASSWORD), timeout=30) as admin,
        httpx.Client(timeout=30) as anonymous,
    ):
        api = server.url + load.API
        feed = ok(admin.get(f"{api}/agents/{searching.agent}/feed"))["https"]
        requests = [
            lambda: admin.request("PROPFIND", server.dav + "admin/", headers={"Depth": "1"}),
            lambda: admin.get(f"{api}/agents/{searching.agent}/plages"),
            lambda: anonymous.get(feed),
        ]
        at_rest, latencies, statuses = _beside_load(server, requests, searching)
    p95 = _p95(at_rest, latencies, statuses)
    # The searches ran (a 503 is one that used up its time budget).
    assert statuses["search 200"] + statuses["search 503"] > 0
    assert p95 < load.p95_bound(server, searches=True)
