"""Sixteen clients sending wrong passwords in a loop beside an agent at work:
the agent's requests keep their pace.  On the code before the auth gate the
agent's PROPFIND took over 4 seconds (argon2 for every wrong password and a
one-second sleep after each, both in the CalDAV threads).

The attackers run in a process of their own, so that their sixteen threads
do not slow the agent's client by holding its interpreter lock."""

from __future__ import annotations

import multiprocessing
import statistics
import threading
import time
from collections import Counter

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, Server

ATTACKERS = 16
FLOOD_SECONDS = 12.0
# Half the 4 s of the issue: the code before the gate measured a 6.6 s median
# here (7.4 s p95) on SQLite.  With the gate the p95 was 0.3 to 1.4 s on a
# shared 2-core machine at a load average of 12, 0.1 to 0.5 s median.
P95_BOUND = 2.0


def _attack(dav: str, n: int, stop: threading.Event, statuses: Counter) -> None:
    # Each attacker has its own address (127.0.1.n) and tries many logins, so
    # the per-address throttle is reached late and the hashes run for a while.
    transport = httpx.HTTPTransport(local_address=f"127.0.1.{n + 1}")
    with httpx.Client(transport=transport, timeout=30) as client:
        tries = 0
        while not stop.is_set():
            tries += 1
            login = "admin" if tries % 2 else f"user{tries % 7}"
            answer = client.request("PROPFIND", dav + "admin/", auth=(login, f"guess-{n}-{tries}"))
            statuses[answer.status_code] += 1


def _pace(agent: httpx.Client, server: Server, seconds: float) -> list[float]:
    """The agent's PROPFIND Depth 1 latencies, one every 50 ms for ``seconds``."""
    latencies: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.monotonic()
        answer = agent.request("PROPFIND", server.dav + "admin/", headers={"Depth": "1"})
        latencies.append(time.monotonic() - started)
        assert answer.status_code == 207
        time.sleep(0.05)
    return latencies


def _flood(dav: str, seconds: float, results: multiprocessing.Queue) -> None:
    """The attacking process: sixteen threads for ``seconds``."""
    stop, statuses = threading.Event(), Counter()
    attackers = [
        threading.Thread(target=_attack, args=(dav, n, stop, statuses)) for n in range(ATTACKERS)
    ]
    for thread in attackers:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in attackers:
        thread.join()
    results.put(dict(statuses))


@pytest.mark.slow
def test_agent_keeps_its_pace_during_a_wrong_password_flood(server: Server) -> None:
    spawn = multiprocessing.get_context("spawn")
    results = spawn.Queue()
    with httpx.Client(auth=("admin", ADMIN_PASSWORD), timeout=30) as agent:
        at_rest = _pace(agent, server, 3.0)
        flood = spawn.Process(target=_flood, args=(server.dav, FLOOD_SECONDS + 3, results))
        flood.start()
        try:
            time.sleep(2.0)  # the process starts, the flood builds up
            latencies = _pace(agent, server, FLOOD_SECONDS)
            statuses = Counter(results.get(timeout=60))
        finally:
            flood.join(60)
            if flood.is_alive():
                flood.kill()
    p95 = statistics.quantiles(latencies, n=20)[-1]
    print(
        f"\nagent at rest: median {statistics.median(at_rest):.3f} s; during the flood: "
        f"{len(latencies)} PROPFINDs, median {statistics.median(latencies):.3f} s, "
        f"p95 {p95:.3f} s; attackers: {dict(statuses)}"
    )
    assert not [s for s in statuses if s >= 500 and s != 503]
    assert statuses[401] > 0  # hashes did run (the rest: 503 busy, or 429)
    assert p95 < P95_BOUND
