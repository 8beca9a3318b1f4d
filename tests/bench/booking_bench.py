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
import statistics
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import holidays
import requests

from storage.database import Database
from tests.bench import booking_load
from tests.bench import results as results_file
from tests.bench.booking_load import ABSENCE, MINUTES, PARIS, PLAGES, Organisation
from tests.bench.servers import Calserver
from tests.bench.verdicts import (
    Kind,
    SetupError,
    Target,
    Verdict,
    check,
    failed,
    guarded,
)

# Ratios measured in one run (see README.md).
FOUR_WEEKS_OVER_ONE = Target("4 weeks / 1 week p50 (base)", 4.5)
WIDE_OVER_BASE = Target("200 agents / 50 agents p50 (4 weeks)", 4.5)
DEEP_OVER_BASE = Target("500,000 past / 50,000 past p50 (4 weeks)", 1.2)
# Absolute times on a shared machine: reported, never gated.
SEARCH_GUIDE = Target("base 4 weeks p50 (ms)", 30.0, kind=Kind.GUIDE)
BOOKING_GUIDE = Target("base booking p50 (ms)", 20.0, kind=Kind.GUIDE)


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
# --quick: the same shapes, small, to check the harness and the answers.
QUICK_SCENARIOS = (
    Scenario("base", 5, 100, 10),
    Scenario("wide", 20, 100, 10),
    Scenario("deep", 5, 1_000, 10),
)
QUICK_RUNS = 5


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
    checks: list[Verdict] = field(default_factory=list)

    def p50(self, name: str) -> float | None:
        values = getattr(self, name)
        return statistics.median(values) if values else None


class BadAnswer(Exception):
    """A request of the timed part failed: the scenario stops there."""


# The slots one agent may be asked for: (local start, agent id).
Pair = tuple[datetime, int]


def expected_pairs(org: Organisation, first: date, days: int) -> set[Pair]:
    """Every (start, agent) the workload leaves free from ``first`` for
    ``days`` days, from its definition alone: the weekly plages on business
    days, minus French public holidays (the ``holidays`` package, metropolitan
    France, Pentecost Monday off), the absences and the RDVs the loader wrote."""
    off = holidays.France(years=range(first.year, first.year + 2))
    step = timedelta(minutes=MINUTES)
    free: set[Pair] = set()
    for agent in org.agent_ids:
        busy = [(a, a + ABSENCE) for a in org.absences[agent]]
        busy += [(r, r + step) for r in org.rdvs[agent]]
        for day in (first + timedelta(days=d) for d in range(days)):
            if day.weekday() >= 5 or day in off:
                continue
            for opens, closes in PLAGES:
                start = datetime.combine(day, opens, PARIS)
                while start + step <= datetime.combine(day, closes, PARIS):
                    if not any(b < start + step and start < e for b, e in busy):
                        free.add((start, agent))
                    start += step
    return free


def answered_pairs(answer: dict) -> set[Pair]:
    return {
        (datetime.fromisoformat(c["starts_at"]), agent)
        for c in answer["creneaux"]
        for agent in c["agent_ids"]
    }


def _one(counts: set[int]) -> int | str:
    """The count every repetition answered, or all of them when they differ."""
    return next(iter(counts)) if len(counts) == 1 else f"varying: {sorted(counts)}"


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _timed(
    session: requests.Session, method: str, url: str, expected: int, **kw: object
) -> tuple[float, dict]:
    started = time.perf_counter()
    answer = session.request(method, url, timeout=120, **kw)
    elapsed = (time.perf_counter() - started) * 1000
    if answer.status_code != expected:
        raise BadAnswer(f"{method} {url}: {answer.status_code} {answer.text[:300]}")
    return round(elapsed, 2), answer.json()


def run_scenario(scenario: Scenario, runs: int, bookings: int, workdir: Path) -> Timings:
    server = Calserver(workdir)
    server.load([])  # schema, organisation and admin
    db = Database(f"sqlite:///{workdir / 'cal.db'}")
    today = date.today()
    started = time.perf_counter()
    try:
        org = booking_load.load(
            db,
            agent_count=scenario.agents,
            future_per_agent=scenario.future_per_agent,
            past_per_agent=scenario.past_per_agent,
            today=today,
        )
    except Exception as e:
        raise SetupError(f"loading {scenario.name}: {e!r}") from e
    finally:
        db.dispose()
    timings = Timings(
        scenario.name,
        scenario.agents,
        scenario.agents * scenario.past_per_agent,
        scenario.agents * scenario.future_per_agent,
        round(time.perf_counter() - started, 1),
    )
    server.start()
    try:
        with requests.Session() as session:
            session.auth = (org.logins[0], booking_load.PASSWORD)
            _measure(
                session, f"http://127.0.0.1:{server.port}/api/v1", org, timings, runs, bookings
            )
    except BadAnswer as e:
        timings.checks.append(failed(f"{scenario.name}: every request", str(e)))
    finally:
        server.stop()
    return timings


def _measure(
    session: requests.Session,
    api: str,
    org: Organisation,
    timings: Timings,
    runs: int,
    bookings: int,
) -> None:
    """Timed searches and bookings, each answer checked against the workload."""
    today = date.today()
    monday = today + timedelta(days=7 - today.weekday())
    name = timings.scenario

    def search(days: int) -> tuple[float, dict]:
        params = {
            "motif": org.motif_id,
            "from": monday.isoformat(),
            "to": (monday + timedelta(days=days - 1)).isoformat(),
        }
        return _timed(session, "GET", api + "/creneaux", 200, params=params)

    for _ in range(3):  # warm-up: caches, connections
        search(28)
    counts: dict[int, set[int]] = {28: set(), 7: set()}
    answers: dict[int, dict] = {}
    for _ in range(runs):
        for days, into in ((28, timings.four_weeks_ms), (7, timings.one_week_ms)):
            elapsed, answers[days] = search(days)
            into.append(elapsed)
            counts[days].add(len(answers[days]["creneaux"]))
    for days, answer in answers.items():
        expected = expected_pairs(org, monday, days)
        what = f"{name}: créneaux over {days} days"
        timings.checks += [
            check(f"{what}, (start, agent) pairs", expected, answered_pairs(answer)),
            check(
                f"{what}, slots (one per start)", len({s for s, _ in expected}), _one(counts[days])
            ),
        ]
    slots = answers[28]["creneaux"]
    timings.slots_four_weeks = len(slots)
    booked: dict[str, Pair] = {}
    for slot in slots[:: max(1, len(slots) // bookings)][:bookings]:
        body = {
            "agent_id": slot["agent_id"],
            "motif_id": org.motif_id,
            "lieu_id": slot["lieu_id"],
            "starts_at": slot["starts_at"],
        }
        elapsed, rdv = _timed(session, "POST", api + "/rdvs", 201, json=body)
        timings.booking_ms.append(elapsed)
        booked[rdv["id"]] = (datetime.fromisoformat(slot["starts_at"]), slot["agent_id"])
    timings.checks += _bookings_stored(session, api, monday, booked, name)
    expected = expected_pairs(org, monday, 28) - set(booked.values())
    after = answered_pairs(search(28)[1])
    timings.checks.append(check(f"{name}: créneaux after the bookings", expected, after))


def _bookings_stored(
    session: requests.Session, api: str, monday: date, booked: dict[str, Pair], name: str
) -> list[Verdict]:
    """Every RDV booked (each got its 201) is in its agent's agenda, at its time."""
    window = {"from": monday.isoformat(), "to": (monday + timedelta(days=27)).isoformat()}
    found: dict[str, Pair] = {}
    for agent in sorted({a for _, a in booked.values()}):
        listed = _timed(session, "GET", f"{api}/agents/{agent}/rdvs", 200, params=window)[1]
        found |= {
            r["id"]: (datetime.fromisoformat(r["starts_at"]), agent)
            for r in listed
            if r["id"] in booked
        }
    at_their_time = sum(found.get(uid) == pair for uid, pair in booked.items())
    return [check(f"{name}: RDVs booked (201) found in their agendas", len(booked), at_their_time)]


def render_table(results: list[Timings]) -> str:
    lines = [
        f"{'scenario':<8} {'agents':>6} {'past RDVs':>10} {'future':>7} {'slots 4w':>9} "
        f"{'4 weeks p50':>12} {'p95':>8} {'1 week p50':>11} {'booking p50':>12} {'p95':>8}"
    ]
    for t in results:
        if not (t.four_weeks_ms and t.booking_ms):
            lines.append(f"{t.scenario:<8} {t.agents:>6} {t.past_rdvs:>10} (failed, see checks)")
            continue
        lines.append(
            f"{t.scenario:<8} {t.agents:>6} {t.past_rdvs:>10} {t.future_rdvs:>7} "
            f"{t.slots_four_weeks:>9} {t.p50('four_weeks_ms'):>9.1f} ms "
            f"{_p(t.four_weeks_ms, 0.95):>5.1f} ms {t.p50('one_week_ms'):>8.1f} ms "
            f"{t.p50('booking_ms'):>9.1f} ms {_p(t.booking_ms, 0.95):>5.1f} ms"
        )
    return "\n".join(lines)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a / b


def verdicts(results: list[Timings], gated: bool) -> list[Verdict]:
    """The targets (ratios in this run), the guides, then every answer check."""
    by = {t.scenario: t for t in results}
    out: list[Verdict] = []
    if base := by.get("base"):
        four = base.p50("four_weeks_ms")
        out.append(FOUR_WEEKS_OVER_ONE.judge(_ratio(four, base.p50("one_week_ms")), gated))
        if "wide" in by:
            out.append(WIDE_OVER_BASE.judge(_ratio(by["wide"].p50("four_weeks_ms"), four), gated))
        if "deep" in by:
            out.append(DEEP_OVER_BASE.judge(_ratio(by["deep"].p50("four_weeks_ms"), four), gated))
        out += [SEARCH_GUIDE.judge(four), BOOKING_GUIDE.judge(base.p50("booking_ms"))]
    return out + [v for t in results for v in t.checks]


def _scenarios(names: Iterable[str], quick: bool) -> list[Scenario]:
    return [s for s in (QUICK_SCENARIOS if quick else SCENARIOS) if s.name in names]


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
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke-check the harness: 5 to 20 agents, {QUICK_RUNS} runs, targets not gated",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.runs = args.bookings = QUICK_RUNS
    context = results_file.run_context("tests.bench.booking_bench", argv)
    return guarded(lambda: run(args, context))


def run(args: argparse.Namespace, context: dict[str, object]) -> int:
    results = []
    for scenario in _scenarios(args.scenarios, args.quick):
        with tempfile.TemporaryDirectory(prefix=f"booking-bench-{scenario.name}-") as folder:
            print(f"loading and measuring {scenario.name} ...", flush=True)
            results.append(run_scenario(scenario, args.runs, args.bookings, Path(folder)))
    sizes = {"runs": args.runs, "bookings": args.bookings}
    return results_file.report(
        "booking-bench",
        context,
        render_table(results),
        verdicts(results, gated=not args.quick),
        {
            "sizes": sizes,
            "results": [
                {
                    **{k: v for k, v in asdict(r).items() if k != "checks"},
                    "p50_ms": {k: r.p50(k) for k in ("four_weeks_ms", "one_week_ms", "booking_ms")},
                }
                for r in results
            ],
        },
        args.quick,
    )


if __name__ == "__main__":
    raise SystemExit(main())
