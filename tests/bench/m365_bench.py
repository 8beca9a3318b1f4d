"""Microsoft 365 benchmark: how fast RDV changes reach Outlook, and what a
mailbox's reconciliation costs.  One command, from the repository root:

    .venv/bin/python -m tests.bench.m365_bench [--quick] [--changes 1000] [--agents 20]
        [--mailbox 2000] [--latency-ms 50] [--no-batch]

Everything runs in this process on a SQLite file, against the Graph
stand-in of the tests (``tests/m365/graph.py``, HTTPS on loopback) answering
every events request after ``--latency-ms``:

1. **Push throughput**: ``--changes`` RDVs written through the agenda writer
   (the write path of the API and CalDAV, outbox included) for ``--agents``
   agents with no worker running, then one ``Pusher`` started: changes per
   second from its start to the last event in the mailboxes, and how many
   calls left inside a ``$batch`` (``--no-batch``: one request per call, for
   comparison).  Checked: every RDV has exactly one event, and no mailbox
   ever had more than 4 requests in flight (batched ones included).
2. **Reconciliation** of one mailbox holding ``--mailbox`` of our events, all
   in sync (the listing and the comparison; nothing to repair).  Checked:
   it found every event and repaired nothing.

``--quick`` runs 200 changes and a mailbox of 200 (its targets are guides).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from booking import events
from booking.rules import BookingRefused
from m365.secrets import SecretBox, new_key
from m365.worker import Pusher, PushSettings, client_of, session
from plugins import agenda_writer, timezone_cache
from storage import agents, scheduling
from storage import m365 as repository
from storage.database import Database
from tests.bench import results as results_file
from tests.bench.verdicts import Target, Verdict, check, guarded
from tests.dates import monday
from tests.m365.graph import GraphServer

ZONE = "Europe/Paris"
SYNCED = Target("RDV changes synced per second, 50 ms Graph latency", 50, at_most=False)
RECONCILED = Target("reconciliation of one mailbox, seconds", 60)


def _settings(graph: GraphServer, box: SecretBox, batching: bool) -> PushSettings:
    return PushSettings(
        box=box, base_url="https://rdv.example.org", authority_url=graph.url,
        graph_url=graph.url + "/v1.0", ca_bundle=str(graph.ca_path), timeout_s=10,
        poll_s=1, retry_first_ms=200, past_days=31, ahead_days=366,
        reconcile_every_s=86_400, keep_log_days=30, reconcile_at_start=False, batching=batching,
    )  # fmt: skip


def _office(db: Database, box: SecretBox, agent_count: int) -> tuple[int, int, int, list[int]]:
    """An organisation connected to the stand-in, its lieu and motif, and
    ``agent_count`` agents with an email and weekday plages 09:00-17:00."""
    zone = ZoneInfo(ZONE)
    first = datetime.combine(monday(2), datetime.min.time(), zone).replace(hour=9)
    with db.transaction(write=True) as conn:
        org = agents.create_organisation(conn, "O", "o")
        ids = []
        for n in range(agent_count):
            ids.append(
                agents.create_agent(
                    conn,
                    f"agent{n}",
                    organisation=org,
                    role="basic",
                    password="agent-pass-1",
                    services_names=("PMI",),
                    email=f"agent{n}@example.org",
                )  # fmt: skip
            )
        service = scheduling.organisation_services(conn, org)[0]["id"]
        lieu = scheduling.create_lieu(conn, {"organisation_id": org, "name": "L", "address": "A"})
        motif = scheduling.create_motif(
            conn, {"organisation_id": org, "service_id": service, "name": "Consultation"}
        )
        for n in range(agent_count):
            plage = events.build_event(
                zone=ZONE, start=first, end=first + timedelta(hours=8), summary="P", uid="p",
                rrule={"FREQ": "WEEKLY", "BYDAY": ["MO", "TU", "WE", "TH", "FR"]},
                transparent=True, motif_ids=[motif["id"]], lieu_id=lieu["id"],
            )  # fmt: skip
            agenda_writer.put_event(conn, f"agent{n}/plages", "p.ics", plage)
        repository.set_connection(conn, org, "tenant", "client", box.seal("secret"), 0)
    return org, lieu["id"], motif["id"], ids


def _book(db: Database, org: int, lieu: int, motif: int, agent: int, count: int) -> int:
    """``count`` RDVs in agent ``agent``'s plages from the Monday two weeks
    ahead (weekends and public holidays skipped); how many were written."""
    start0 = datetime.combine(monday(2), datetime.min.time(), ZoneInfo(ZONE)).replace(hour=9)
    written = n = 0
    while written < count:
        start = start0 + timedelta(days=n // 16, minutes=30 * (n % 16))
        n += 1
        text = events.build_event(
            zone=ZONE, start=start, end=start + timedelta(minutes=30), summary="R",
            uid=f"r{agent}-{n}", motif_ids=[motif], lieu_id=lieu, organisation_id=org,
        )  # fmt: skip
        try:
            with db.transaction(write=True) as conn:
                agenda_writer.put_event(conn, f"agent{agent}/rdv", f"r{n}.ics", text)
        except BookingRefused:
            continue
        written += 1
    return written


def _ours(graph: GraphServer, agent_count: int) -> list[dict]:
    return [e for n in range(agent_count) for e in graph.events(f"agent{n}@example.org")]


async def _push_until(pusher: Pusher, graph: GraphServer, count: int, agent_count: int) -> float:
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(pusher.run(stop))
    while len(_ours(graph, agent_count)) < count and not task.done():
        await asyncio.sleep(0.02)
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    return elapsed


async def _reconcile(pusher: Pusher, org: int, agent: int) -> tuple[float, dict]:
    async with session(pusher.settings) as http:
        client = client_of(http, pusher.settings)
        started = time.perf_counter()
        report = await pusher.reconcile(client, agent, org)
        return time.perf_counter() - started, report


def run_all(args: argparse.Namespace, context: dict[str, object]) -> int:
    root = Path(tempfile.mkdtemp(prefix="m365-bench-"))
    timezone_cache.install()
    graph = GraphServer(root, latency_s=args.latency_ms / 1000).start()
    graph.register_app("tenant", "client", "secret")
    box = SecretBox(new_key())
    db = Database(f"sqlite:///{root / 'bench.db'}")
    db.migrate()
    try:
        org, lieu, motif, agent_ids = _office(db, box, args.agents + 1)
        per_agent = [args.changes // args.agents] * args.agents
        per_agent[0] += args.changes - sum(per_agent)
        print(f"writing {args.changes} RDVs for {args.agents} agents ...", flush=True)
        written = sum(_book(db, org, lieu, motif, n, c) for n, c in enumerate(per_agent))
        print("pushing ...", flush=True)
        pusher = Pusher(db, _settings(graph, box, not args.no_batch))
        seconds = asyncio.run(_push_until(pusher, graph, written, args.agents))
        pushed = _ours(graph, args.agents)
        calls = graph.requests()
        batched, batches = sum(r.in_batch for r in calls), graph.batches
        big = args.agents  # the extra agent, whose mailbox is reconciled
        print(f"writing and pushing a mailbox of {args.mailbox} ...", flush=True)
        mailbox = _book(db, org, lieu, motif, big, args.mailbox)
        settings = _settings(graph, box, not args.no_batch)
        asyncio.run(_push_until(Pusher(db, settings), graph, written + mailbox, args.agents + 1))
        print("reconciling it ...", flush=True)
        reconcile_s, report = asyncio.run(_reconcile(pusher, org, agent_ids[big]))
    finally:
        db.dispose()
        graph.close()
    rate = written / seconds
    most = max(graph.most_in_flight.values(), default=0)
    gated = not args.quick
    found: list[Verdict] = [
        SYNCED.judge(rate, gated),
        RECONCILED.judge(reconcile_s, gated),
        check("one event per RDV", written, len(pushed)),
        check("no RDV twice", written, len({e["transactionId"] for e in pushed})),
        check("at most 4 requests in flight per mailbox", True, most <= 4),
        check("reconciliation found the whole mailbox", mailbox, report["events"]),
        check("reconciliation repaired nothing", (0, 0), (report["deleted"], report["missing"])),
    ]
    table = "\n".join(
        [
            "| measure | value |",
            "|---|---|",
            f"| changes synced ({written} for {args.agents} agents) | {rate:.0f} per second |",
            f"| most requests in flight for one mailbox | {most} |",
            f"| push calls sent inside a $batch | {batched} of {len(calls)}, in {batches} "
            "batches |",
            f"| reconciliation of a mailbox of {mailbox} events | {reconcile_s:.2f} s |",
        ]
    )
    data = {
        "sizes": vars(args),
        "push": {
            "changes": written,
            "seconds": seconds,
            "per_second": rate,
            "most": most,
            "calls": len(calls),
            "in_batch": batched,
            "batches": batches,
        },  # fmt: skip
        "reconcile": {"events": mailbox, "seconds": reconcile_s, "report": report},
    }
    return results_file.report("m365-bench", context, table, found, data, quick=args.quick)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.m365_bench")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--mailbox", type=int, default=2000)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--no-batch", action="store_true", help="one request per call")
    args = parser.parse_args(argv)
    if args.quick:
        args.changes, args.mailbox = min(args.changes, 200), min(args.mailbox, 200)
    context = results_file.run_context("tests.bench.m365_bench", argv)
    return guarded(lambda: run_all(args, context))


if __name__ == "__main__":
    sys.exit(main())
