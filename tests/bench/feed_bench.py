"""Feed benchmark: one agent's Webcal feed, full and conditional (304).

An agent with 2,000 RDVs in the feed's window (the coming year) and either no
history or 100,000 RDVs older than the window.  Timed over HTTP against
``calserver serve``, median of ``--runs``: the full feed (after a first,
cold request, reported apart) and a conditional GET answered 304.  Ratios in
one run: history over none for the full feed, full feed over 304.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import requests

from storage.database import Database
from tests.bench import booking_load
from tests.bench import results as results_file
from tests.bench.booking_load import PARIS, Organisation
from tests.bench.servers import Calserver
from tests.bench.verdicts import (
    SetupError,
    Target,
    Verdict,
    check,
    failed,
    guarded,
)

IN_WINDOW = 2_000
OLDER = 100_000
RUNS = 30
QUICK = {"in_window": 200, "older": 2_000, "runs": 5}
# The feed's window in config.ini ([feeds] past_days, ahead_days): RDVs from
# 31 days ago to 366 days ahead.  The loader puts the RDVs of the window in the
# next 360 days and the history from 800 to 40 days ago, well clear of its ends.
WINDOW_DAYS = (31, 366)
HISTORY_OVER_NONE = Target("history / none, full feed p50", 1.2)
FULL_OVER_304 = Target("full feed / 304 p50 (with history)", 10.0, at_most=False)


@dataclass
class FeedTimings:
    scenario: str
    older_rdvs: int
    events_in_feed: int = 0
    bytes: int = 0
    cold_ms: float = 0.0
    full_ms: list[float] = field(default_factory=list)
    not_modified_ms: list[float] = field(default_factory=list)
    checks: list[Verdict] = field(default_factory=list)

    def p50(self, name: str) -> float | None:
        values = getattr(self, name)
        return statistics.median(values) if values else None


def expected_events(org: Organisation, today: date) -> int:
    """The RDVs the loader wrote that start inside the feed's window."""
    first = datetime.combine(today - timedelta(days=WINDOW_DAYS[0]), datetime.min.time(), PARIS)
    last = datetime.combine(today + timedelta(days=WINDOW_DAYS[1]), datetime.min.time(), PARIS)
    starts = [s for agent in org.rdvs.values() for s in agent] + org.past
    return sum(first <= s < last for s in starts)


def _get(session: requests.Session, url: str, **headers: str) -> tuple[float, requests.Response]:
    started = time.perf_counter()
    answer = session.get(url, headers=headers, timeout=120)
    return round((time.perf_counter() - started) * 1000, 2), answer


def run(name: str, in_window: int, older: int, runs: int, workdir: Path) -> FeedTimings:
    server = Calserver(workdir)
    server.load([])
    db = Database(f"sqlite:///{workdir / 'cal.db'}")
    today = date.today()
    try:
        org = booking_load.load(
            db,
            agent_count=1,
            future_per_agent=in_window,
            past_per_agent=older,
            absences_per_agent=0,
            today=today,
            future_days=360,
            past_span=(800, 40),
        )
    except Exception as e:
        raise SetupError(f"loading {name}: {e!r}") from e
    finally:
        db.dispose()
    timings = FeedTimings(name, older)
    server.start()
    try:
        with requests.Session() as session:
            api = f"http://127.0.0.1:{server.port}/api/v1"
            session.auth = (org.logins[0], booking_load.PASSWORD)
            link = session.get(f"{api}/agents/{org.agent_ids[0]}/feed", timeout=30)
            if link.status_code != 200:
                raise SetupError(f"feed link: HTTP {link.status_code} {link.text[:300]}")
            session.auth = None
            _measure(session, link.json()["https"], expected_events(org, today), runs, timings)
    finally:
        server.stop()
    return timings


def _measure(
    session: requests.Session, url: str, expected: int, runs: int, timings: FeedTimings
) -> None:
    """The cold feed, then ``runs`` full and conditional GETs, every answer checked."""
    name = timings.scenario
    timings.cold_ms, first = _get(session, url)
    if first.status_code != 200:
        timings.checks.append(failed(f"{name}: full feed", f"HTTP {first.status_code}"))
        return
    timings.bytes = len(first.content)
    timings.events_in_feed = first.content.count(b"BEGIN:VEVENT")
    timings.checks.append(check(f"{name}: VEVENTs in the feed", expected, timings.events_in_feed))
    etag = first.headers.get("ETag", "")
    full_answers, cached_answers = set(), set()
    for _ in range(runs):
        elapsed, full = _get(session, url)
        timings.full_ms.append(elapsed)
        full_answers.add(
            (full.status_code, full.headers.get("ETag"), full.content == first.content)
        )
        elapsed, cached = _get(session, url, **{"If-None-Match": etag})
        timings.not_modified_ms.append(elapsed)
        cached_answers.add((cached.status_code, len(cached.content)))
    timings.checks += [
        check(f"{name}: every full GET 200, same ETag and body", {(200, etag, True)}, full_answers),
        check(f"{name}: every conditional GET 304 with an empty body", {(304, 0)}, cached_answers),
    ]


def render_table(results: list[FeedTimings]) -> str:
    header = ("scenario", "older RDVs", "events", "bytes", "cold ms", "full p50 ms", "304 p50 ms")
    lines = ["  ".join(f"{h:>11}" for h in header)]
    for t in results:
        row = (
            t.scenario,
            t.older_rdvs,
            t.events_in_feed,
            t.bytes,
            f"{t.cold_ms:.1f}",
            *(f"{p:.1f}" if (p := t.p50(k)) else "-" for k in ("full_ms", "not_modified_ms")),
        )
        lines.append("  ".join(f"{v:>11}" for v in row))
    return "\n".join(lines)


def verdicts(none: FeedTimings, history: FeedTimings, gated: bool) -> list[Verdict]:
    full, full_none = history.p50("full_ms"), none.p50("full_ms")
    not_modified = history.p50("not_modified_ms")
    return [
        HISTORY_OVER_NONE.judge(full / full_none if full and full_none else None, gated),
        FULL_OVER_304.judge(full / not_modified if full and not_modified else None, gated),
        *none.checks,
        *history.checks,
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.feed_bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--older", type=int, default=OLDER, help="RDVs older than the window")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke-check the harness: {QUICK['in_window']} RDVs in the window,"
        f" {QUICK['older']} older, {QUICK['runs']} runs, targets not gated",
    )
    args = parser.parse_args(argv)
    args.in_window = QUICK["in_window"] if args.quick else IN_WINDOW
    if args.quick:
        args.older, args.runs = QUICK["older"], QUICK["runs"]
    context = results_file.run_context("tests.bench.feed_bench", argv)
    return guarded(lambda: run_all(args, context))


def run_all(args: argparse.Namespace, context: dict[str, object]) -> int:
    results = []
    for name, older in (("none", 0), ("history", args.older)):
        with tempfile.TemporaryDirectory(prefix=f"feed-bench-{name}-") as folder:
            print(f"loading and measuring {name} ...", flush=True)
            results.append(run(name, args.in_window, older, args.runs, Path(folder)))
    return results_file.report(
        "feed-bench",
        context,
        render_table(results),
        verdicts(*results, gated=not args.quick),
        {
            "sizes": {"in_window": args.in_window, "older": args.older, "runs": args.runs},
            "results": [
                {
                    **{k: v for k, v in asdict(r).items() if k != "checks"},
                    "p50_ms": {k: r.p50(k) for k in ("full_ms", "not_modified_ms")},
                }
                for r in results
            ],
        },
        args.quick,
    )


if __name__ == "__main__":
    raise SystemExit(main())
