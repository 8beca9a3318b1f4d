"""Booking benchmark: créneaux search and API booking on a loaded organisation.

Three organisations, each loaded then served by ``calserver serve`` and asked
over HTTP:

* base: 50 agents, plages Monday-Friday 09:00-12:00 and 14:00-17:00 weekly,
  5 absences each, 2,000 future RDVs over 3 months, 50,000 past ones;
* wide: the same per agent, 200 agents;
* deep: base with 500,000 past RDVs.

Timed (median and 95th percentile of ``--runs``): the créneaux of one motif
for all agents over 4 weeks and over 1 week, and an RDV booked through the
API (each on a different free slot).  Ratios in one run: 4 weeks over 1 week,
wide over base, deep over base.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path

import requests

from storage.database import Database
from tests.bench import booking_load
from tests.bench.servers import REPO, Calserver

RESULTS = REPO / "tests" / "bench" / "results"


@dataclass(frozen=True)
class Scenario:
    name: str
    agents: int
    past_per_agent: int
    future_per_agent: int = 40


SCENARIOS = (
    Scenario("base", 50, 1_000),
    Scenario("wide", 200, 1_000),
    Scenario("deep", 50, 10_000),
)


@dataclass
class Timings:
    scenario: str
    agents: int
    past_rdvs: int
    future_rdvs: int
    load_seconds: float
    four_weeks_ms: list[float] = field(default_factory=list)
    one_week_ms: list[float] = field(default_factory=list)
    booking_ms: list[float] = field(default_factory=list)
    slots_four_weeks: int = 0


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _timed(session: requests.Session, method: str, url: str, **kw: object) -> tuple[float, dict]:
    started = time.perf_counter()
    answer = session.request(method, url, timeout=120, **kw)
    elapsed = (time.perf_counter() - started) * 1000
    if answer.status_code >= 300:
        raise RuntimeError(f"{method} {url}: {answer.status_code} {answer.text[:300]}")
    return elapsed, answer.json()


def run_scenario(scenario: Scenario, runs: int, bookings: int, workdir: Path) -> Timings:
    server = Calserver(workdir)
    server.load([])  # schema, organisation and admin
    db = Database(f"sqlite:///{workdir / 'cal.db'}")
    today = date.today()
    started = time.perf_counter()
    org = booking_load.load(
        db,
        agent_count=scenario.agents,
        future_per_agent=scenario.future_per_agent,
        past_per_agent=scenario.past_per_agent,
        today=today,
    )
    db.dispose()
    timings = Timings(
        scenario.name,
        scenario.agents,
        scenario.agents * scenario.past_per_agent,
        scenario.agents * scenario.future_per_agent,
        round(time.perf_counter() - started, 1),
    )
    monday = today + timedelta(days=7 - today.weekday())
    api = f"http://127.0.0.1:{server.port}/api/v1"
    server.start()
    try:
        with requests.Session() as session:
            session.auth = (org.logins[0], booking_load.PASSWORD)

            def search(days: int) -> tuple[float, dict]:
                params = {
                    "motif": org.motif_id,
                    "from": monday.isoformat(),
                    "to": (monday + timedelta(days=days - 1)).isoformat(),
                }
                return _timed(session, "GET", api + "/creneaux", params=params)

            for _ in range(3):  # warm-up: caches, connections
                search(28)
            for _ in range(runs):
                elapsed, answer = search(28)
                timings.four_weeks_ms.append(elapsed)
                timings.one_week_ms.append(search(7)[0])
            timings.slots_four_weeks = len(answer["creneaux"])
            for slot in answer["creneaux"][:: max(1, len(answer["creneaux"]) // bookings)][
                :bookings
            ]:
                body = {
                    "agent_id": slot["agent_id"],
                    "motif_id": org.motif_id,
                    "lieu_id": slot["lieu_id"],
                    "starts_at": slot["starts_at"],
                }
                timings.booking_ms.append(_timed(session, "POST", api + "/rdvs", json=body)[0])
    finally:
        server.stop()
    return timings


def render(results: list[Timings]) -> str:
    lines = [
        f"{'scenario':<8} {'agents':>6} {'past RDVs':>10} {'future':>7} {'slots 4w':>9} "
        f"{'4 weeks p50':>12} {'p95':>8} {'1 week p50':>11} {'booking p50':>12} {'p95':>8}"
    ]
    for t in results:
        lines.append(
            f"{t.scenario:<8} {t.agents:>6} {t.past_rdvs:>10} {t.future_rdvs:>7} "
            f"{t.slots_four_weeks:>9} {statistics.median(t.four_weeks_ms):>9.1f} ms "
            f"{_p(t.four_weeks_ms, 0.95):>5.1f} ms {statistics.median(t.one_week_ms):>8.1f} ms "
            f"{statistics.median(t.booking_ms):>9.1f} ms {_p(t.booking_ms, 0.95):>5.1f} ms"
        )
    return "\n".join(lines)


def verdicts(results: list[Timings]) -> list[str]:
    by = {t.scenario: t for t in results}
    base = by["base"]
    four = statistics.median(base.four_weeks_ms)
    checks = [
        ("4 weeks / 1 week (base)", four / statistics.median(base.one_week_ms), 4.5),
        (
            "200 agents / 50 agents (4 weeks)",
            statistics.median(by["wide"].four_weeks_ms) / four,
            4.5,
        )
        if "wide" in by
        else None,
        (
            "500,000 past / 50,000 past (4 weeks)",
            statistics.median(by["deep"].four_weeks_ms) / four,
            1.2,
        )
        if "deep" in by
        else None,
        ("base 4 weeks p50 (ms, guide)", four, 30.0),
        ("base booking p50 (ms, guide)", statistics.median(base.booking_ms), 20.0),
    ]
    return [
        f"{name:<40} {value:8.2f}  target <= {limit:<5} {'met' if value <= limit else 'MISSED'}"
        for name, value, limit in filter(None, checks)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.booking_bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--runs", type=int, default=30, help="timed searches per scenario")
    parser.add_argument("--bookings", type=int, default=40, help="timed API bookings per scenario")
    parser.add_argument(
        "--scenarios",
        nargs="+",
        default=[s.name for s in SCENARIOS],
        choices=[s.name for s in SCENARIOS],
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    results = []
    for scenario in SCENARIOS:
        if scenario.name not in args.scenarios:
            continue
        with tempfile.TemporaryDirectory(prefix=f"booking-bench-{scenario.name}-") as folder:
            print(f"loading and measuring {scenario.name} ...", flush=True)
            results.append(run_scenario(scenario, args.runs, args.bookings, Path(folder)))
    table = render(results)
    lines = verdicts(results) if any(r.scenario == "base" for r in results) else []
    print(table + "\n\nTargets\n" + "\n".join(lines))
    RESULTS.mkdir(exist_ok=True)
    path = args.json or RESULTS / f"booking-bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(
        json.dumps(
            {"results": [asdict(r) for r in results], "table": table, "targets": lines}, indent=2
        )
    )
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
