"""Feed benchmark: one agent's Webcal feed, full and conditional (304).

An agent with 2,000 RDVs in the feed's window (the coming year) and either no
history or 100,000 RDVs older than the window.  Timed over HTTP against
``calserver serve``, median of ``--runs``: the full feed (after a first,
cold request, reported apart) and a conditional GET answered 304.  Ratios in
one run: history over none for the full feed, full feed over 304.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import requests

from storage.database import Database
from tests.bench import booking_load
from tests.bench.servers import REPO, Calserver

RESULTS = REPO / "tests" / "bench" / "results"
IN_WINDOW = 2_000


@dataclass
class FeedTimings:
    scenario: str
    older_rdvs: int
    events_in_feed: int = 0
    bytes: int = 0
    cold_ms: float = 0.0
    full_ms: list[float] = field(default_factory=list)
    not_modified_ms: list[float] = field(default_factory=list)


def _get(session: requests.Session, url: str, **headers: str) -> tuple[float, requests.Response]:
    started = time.perf_counter()
    answer = session.get(url, headers=headers, timeout=120)
    return (time.perf_counter() - started) * 1000, answer


def run(name: str, older: int, runs: int, workdir: Path) -> FeedTimings:
    server = Calserver(workdir)
    server.load([])
    db = Database(f"sqlite:///{workdir / 'cal.db'}")
    org = booking_load.load(
        db,
        agent_count=1,
        future_per_agent=IN_WINDOW,
        past_per_agent=older,
        absences_per_agent=0,
        today=date.today(),
        future_days=360,
        past_span=(800, 40),
    )
    db.dispose()
    timings = FeedTimings(name, older)
    server.start()
    try:
        with requests.Session() as session:
            api = f"http://127.0.0.1:{server.port}/api/v1"
            session.auth = (org.logins[0], booking_load.PASSWORD)
            url = session.get(f"{api}/agents/{org.agent_ids[0]}/feed", timeout=30).json()["https"]
            session.auth = None
            timings.cold_ms, first = _get(session, url)
            assert first.status_code == 200, first.text[:300]
            timings.bytes = len(first.content)
            timings.events_in_feed = first.content.count(b"BEGIN:VEVENT")
            etag = first.headers["ETag"]
            for _ in range(runs):
                elapsed, full = _get(session, url)
                assert full.status_code == 200 and full.headers["ETag"] == etag
                timings.full_ms.append(elapsed)
                elapsed, cached = _get(session, url, **{"If-None-Match": etag})
                assert cached.status_code == 304
                timings.not_modified_ms.append(elapsed)
    finally:
        server.stop()
    return timings


def _verdict(name: str, value: float, met: bool, target: str) -> str:
    return f"{name:<30} {value:7.2f}  target {target:<7} {'met' if met else 'MISSED'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.feed_bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--older", type=int, default=100_000, help="RDVs older than the window")
    args = parser.parse_args(argv)
    results = []
    for name, older in (("none", 0), ("history", args.older)):
        with tempfile.TemporaryDirectory(prefix=f"feed-bench-{name}-") as folder:
            print(f"loading and measuring {name} ...", flush=True)
            results.append(run(name, older, args.runs, Path(folder)))
    header = ("scenario", "older RDVs", "events", "bytes", "cold ms", "full p50 ms", "304 p50 ms")
    lines = ["  ".join(f"{h:>11}" for h in header)]
    for t in results:
        row = (
            t.scenario,
            t.older_rdvs,
            t.events_in_feed,
            t.bytes,
            f"{t.cold_ms:.1f}",
            f"{statistics.median(t.full_ms):.1f}",
            f"{statistics.median(t.not_modified_ms):.1f}",
        )
        lines.append("  ".join(f"{v:>11}" for v in row))
    none, history = results
    history_ratio = statistics.median(history.full_ms) / statistics.median(none.full_ms)
    speedup = statistics.median(history.full_ms) / statistics.median(history.not_modified_ms)
    targets = [
        _verdict("history / none (full feed)", history_ratio, history_ratio <= 1.2, "<= 1.2"),
        _verdict("full / 304 (with history)", speedup, speedup >= 10, ">= 10"),
    ]
    print("\n".join(lines) + "\n\nTargets\n" + "\n".join(targets))
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"feed-bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(
        json.dumps({"results": [asdict(r) for r in results], "targets": targets}, indent=2)
    )
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
