"""Export benchmark: an organisation's RDVs as an XLSX file through the API.

An organisation of 10 agents, 3 motifs, 2 lieux and 2,000 usagers holds
10,000 RDVs over the coming year (one or two usagers each, every status),
bulk-inserted with the rows calserver's write path makes (item, change log,
booking index, the RDV's usagers).  ``calserver serve`` on SQLite then
answers ``GET /api/v1/organisations/{org}/rdvs.xlsx`` for the whole year,
as an admin, ``--runs`` times: the target is the median at most 3 s.  The
CSV file and the same XLSX at a tenth of the size are timed beside it as
guides (how the cost grows).  Every file is parsed back (openpyxl, csv) and
checked against the loaded RDVs: its row count, its rows by status and
motif, and one row in full.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import random
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import requests
from sqlalchemy import insert, select

from booking import events
from storage import agenda_index, agents, calendars, scheduling
from storage.database import Database
from storage.schema import agenda_events, agenda_occurrences, changes, items, rdv_usagers
from tests.bench import results as results_file
from tests.bench.servers import PASSWORD, Calserver
from tests.bench.verdicts import SetupError, Target, Verdict, check, failed, guarded

PARIS = ZoneInfo("Europe/Paris")
SIZE = 10_000
RUNS = 5
QUICK = {"size": 1_000, "runs": 3}
XLSX_SECONDS = Target("XLSX export of 10,000 RDVs, median s", 3.0)
AGENTS, USAGERS = 10, 2_000
MOTIFS = (("Premier accueil", 30), ("Entretien social", 45), ("Rappel téléphonique", 15))
LIEUX = ("Mairie", "Maison des solidarités")
STATUSES = ("unknown", "seen", "noshow", "excused", "revoked")
LABELS = {
    "unknown": "À venir",
    "seen": "Présent",
    "noshow": "Absent non excusé",
    "excused": "Annulé par l'usager",
    "revoked": "Annulé par le service",
}


@dataclass
class Loaded:
    """What was loaded: the organisation, and per RDV (by UID) what its file
    row must say."""

    organisation: int
    first_day: date
    last_day: date
    rows: dict[str, tuple] = field(default_factory=dict)


def load(db: Database, size: int, seed: int = 2027) -> Loaded:
    rng = random.Random(seed)
    today = date.today()
    with db.transaction(write=True) as conn:
        org = agents.organisation_id(conn, "mon-organisation")
        service = agents.service_id(conn, org, "Accueil")
        lieux = [
            scheduling.create_lieu(
                conn, {"organisation_id": org, "name": name, "address": "1 rue A, 75001 Paris"}
            )["id"]
            for name in LIEUX
        ]
        motifs = [
            scheduling.create_motif(
                conn,
                {"organisation_id": org, "service_id": service, "name": name,
                 "duration_minutes": minutes},
            )["id"]
            for name, minutes in MOTIFS
        ]  # fmt: skip
        logins = [f"agent{n:02d}" for n in range(AGENTS)]
        agent_ids = [
            agents.create_agent(conn, login, organisation=org, role="basic", password=PASSWORD,
                                services_names=("Accueil",), display_name=f"Agent {n:02d}")
            for n, login in enumerate(logins)
        ]  # fmt: skip
        people = []
        for n in range(USAGERS):
            first, last = f"Prénom{n:04d}", f"Nom{n:04d}"
            created = scheduling.create_usager(
                conn, {"organisation_id": org, "first_name": first, "last_name": last}
            )
            people.append((created["id"], f"{first} {last}"))
    loaded = Loaded(org, today + timedelta(days=1), today + timedelta(days=365))
    per_agent = -(-size // AGENTS)
    for a, (agent_id, login) in enumerate(zip(agent_ids, logins, strict=True)):
        count = min(per_agent, size - a * per_agent)
        _bulk(db, org, agent_id, login, count, (motifs, lieux, people), loaded, rng)
    return loaded


def _bulk(
    db: Database,
    org: int,
    agent_id: int,
    login: str,
    count: int,
    records: tuple[list[int], list[int], list[tuple[int, str]]],
    loaded: Loaded,
    rng: random.Random,
) -> None:
    """``count`` RDVs of one agent, twelve a day in slots of 45 minutes from
    08:00 (none overlaps) from tomorrow on, in one transaction."""
    motifs, lieux, people = records
    with db.transaction(write=True) as conn:
        collection = calendars.get_collection(conn, f"{login}/rdv")
        assert collection is not None
        revision = calendars.bump_revision(conn, collection)
        rows, index = [], []
        for n in range(count):
            day = loaded.first_day + timedelta(days=n // 12 % 360)
            local = datetime.combine(day, datetime.min.time(), PARIS) + timedelta(
                hours=8, minutes=45 * (n % 12)
            )
            m = rng.randrange(len(motifs))
            minutes = MOTIFS[m][1]
            start, end = local.astimezone(UTC), (local + timedelta(minutes=minutes)).astimezone(UTC)
            status = STATUSES[rng.randrange(len(STATUSES))]
            lieu = lieux[rng.randrange(len(lieux))]
            chosen = sorted(rng.sample(people, rng.choice((1, 1, 2))))  # the export orders by id
            uid = f"export-{login}-{n}@bench"
            text = events.build_event(
                zone="Europe/Paris", uid=uid, start=start, end=end, summary=MOTIFS[m][0],
                motif_ids=[motifs[m]], lieu_id=lieu, organisation_id=org, status=status,
                attendees=[events.Attendee(p, name, None) for p, name in chosen],
            )  # fmt: skip
            s, e = int(start.timestamp()), int(end.timestamp())
            rows.append({"collection_id": collection.id, "href": f"{uid}.ics", "uid": uid,
                         "etag": f'"{hashlib.md5(text.encode()).hexdigest()}"',
                         "component": "VEVENT", "text": text, "t_start": s, "t_end": e,
                         "ranges_until": None, "revision": revision, "modified_at": s})  # fmt: skip
            index.append((uid, s, e, motifs[m], lieu, status, [p for p, _ in chosen]))
            loaded.rows[uid] = (
                local.date(), local.time(), (local + timedelta(minutes=minutes)).time(), minutes,
                LABELS[status], MOTIFS[m][0], "Accueil", LIEUX[lieux.index(lieu)],
                f"Agent {int(login[-2:]):02d}", ", ".join(name for _, name in chosen), uid,
            )  # fmt: skip
        conn.execute(insert(items), rows)
        logged = [{"collection_id": collection.id, "revision": revision, "href": r["href"],
                   "operation": "created"} for r in rows]  # fmt: skip
        conn.execute(insert(changes), logged)
        stored = select(items.c.uid, items.c.id).where(
            items.c.collection_id == collection.id, items.c.revision == revision
        )
        ids = dict(conn.execute(stored).all())
        indexed, occurrences, participations = [], [], []
        for uid, s, e, motif, lieu, status, chosen in index:
            item = ids[uid]
            indexed.append({
                "item_id": item, "public_id": agenda_index.public_id(item),
                "agent_id": agent_id, "kind": "rdv", "uid": uid, "organisation_id": org,
                "motif_id": motif, "lieu_id": lieu, "status": status, "motif_ids": None,
                "starts_at": s, "ends_at": e, "expanded_until": calendars.FAR_FUTURE,
            })  # fmt: skip
            if status not in ("excused", "revoked"):  # a cancelled RDV holds no time
                occurrences.append(
                    {"item_id": item, "agent_id": agent_id, "kind": "rdv", "r_start": s,
                     "r_end": e})  # fmt: skip
            participations += [{"item_id": item, "usager_id": p} for p in chosen]
        conn.execute(insert(agenda_events), indexed)
        if occurrences:
            conn.execute(insert(agenda_occurrences), occurrences)
        conn.execute(insert(rdv_usagers), participations)


@dataclass
class Timings:
    size: int
    xlsx_s: list[float] = field(default_factory=list)
    csv_s: list[float] = field(default_factory=list)
    xlsx_bytes: int = 0
    csv_bytes: int = 0
    checks: list[Verdict] = field(default_factory=list)

    def median(self, name: str) -> float | None:
        values = getattr(self, name)
        return statistics.median(values) if values else None


def _timed(session: requests.Session, url: str, params: dict) -> tuple[float, requests.Response]:
    started = time.perf_counter()
    answer = session.get(url, params=params, timeout=300)
    return round(time.perf_counter() - started, 3), answer


def run(size: int, runs: int, workdir: Path) -> Timings:
    server = Calserver(workdir)
    server.load([])
    db = Database(f"sqlite:///{workdir / 'cal.db'}")
    try:
        loaded = load(db, size)
    except Exception as e:
        raise SetupError(f"loading {size} RDVs: {e!r}") from e
    finally:
        db.dispose()
    timings = Timings(size)
    server.start()
    try:
        with requests.Session() as session:
            session.auth = ("admin", PASSWORD)
            base = f"http://127.0.0.1:{server.port}/api/v1/organisations/{loaded.organisation}"
            params = {"from": loaded.first_day.isoformat(), "to": loaded.last_day.isoformat()}
            for _ in range(runs):
                elapsed, answer = _timed(session, base + "/rdvs.xlsx", params)
                if answer.status_code != 200:
                    timings.checks.append(failed(f"{size}: XLSX", f"HTTP {answer.status_code}"))
                    return timings
                timings.xlsx_s.append(elapsed)
                elapsed, csv_answer = _timed(session, base + "/rdvs.csv", params)
                timings.csv_s.append(elapsed)
            timings.xlsx_bytes, timings.csv_bytes = len(answer.content), len(csv_answer.content)
            timings.checks += _checks(size, loaded, answer.content, csv_answer.content)
    finally:
        server.stop()
    return timings


def _checks(size: int, loaded: Loaded, xlsx: bytes, text: bytes) -> list[Verdict]:
    """The files against what was loaded, computed from the load alone."""
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx), read_only=True)["RDV"]
    rows = [tuple(r) for r in sheet.iter_rows(min_row=2, values_only=True)]
    expected = loaded.rows
    by = {uid: row for uid, row in ((r[10], r) for r in rows)}
    sample = sorted(expected)[size // 2]
    want = expected[sample]
    got = by.get(sample)
    shown = None if got is None else (got[0].date(), *got[1:])
    lines = list(csv.reader(io.StringIO(text.decode("utf-8-sig")), delimiter=";"))
    return [
        check(f"{size}: XLSX rows", len(expected), len(rows)),
        check(f"{size}: XLSX rows by status",
              Counter(r[4] for r in expected.values()), Counter(r[4] for r in rows)),
        check(f"{size}: XLSX rows by motif",
              Counter(r[5] for r in expected.values()), Counter(r[5] for r in rows)),
        check(f"{size}: one XLSX row in full", want, shown),
        check(f"{size}: CSV rows", len(expected), len(lines) - 1),
    ]  # fmt: skip


def render_table(results: list[Timings]) -> str:
    header = ("RDVs", "XLSX median s", "XLSX bytes", "CSV median s", "CSV bytes")
    lines = ["  ".join(f"{h:>14}" for h in header)]
    for t in results:
        row = (t.size, _fmt(t.median("xlsx_s")), t.xlsx_bytes, _fmt(t.median("csv_s")),
               t.csv_bytes)  # fmt: skip
        lines.append("  ".join(f"{v:>14}" for v in row))
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def verdicts(small: Timings, full: Timings, gated: bool) -> list[Verdict]:
    xlsx, xlsx_small = full.median("xlsx_s"), small.median("xlsx_s")
    growth = Target(f"XLSX {full.size} / {small.size} RDVs, median", 12.0)
    return [
        XLSX_SECONDS.judge(xlsx, gated),
        growth.judge(xlsx / xlsx_small if xlsx and xlsx_small else None, gated=False),
        *small.checks,
        *full.checks,
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.export_bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--runs", type=int, default=RUNS, help="repetitions (the median counts)")
    parser.add_argument("--size", type=int, default=SIZE, help="RDVs in the organisation")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke-check: {QUICK['size']} RDVs, {QUICK['runs']} runs, target not gated",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.runs = QUICK["size"], QUICK["runs"]
    context = results_file.run_context("tests.bench.export_bench", argv)
    return guarded(lambda: run_all(args, context))


def run_all(args: argparse.Namespace, context: dict[str, object]) -> int:
    results = []
    for size in (max(100, args.size // 10), args.size):
        with tempfile.TemporaryDirectory(prefix=f"export-bench-{size}-") as folder:
            print(f"loading {size} RDVs and exporting ...", flush=True)
            results.append(run(size, args.runs, Path(folder)))
    return results_file.report(
        "export-bench",
        context,
        render_table(results),
        verdicts(*results, gated=not args.quick),
        {
            "sizes": {"rdvs": [r.size for r in results], "runs": args.runs},
            "results": [
                {
                    "size": r.size,
                    "xlsx_s": r.xlsx_s,
                    "csv_s": r.csv_s,
                    "xlsx_bytes": r.xlsx_bytes,
                    "csv_bytes": r.csv_bytes,
                    "median_s": {"xlsx": r.median("xlsx_s"), "csv": r.median("csv_s")},
                }
                for r in results
            ],  # fmt: skip
        },
        args.quick,
    )


if __name__ == "__main__":
    raise SystemExit(main())
