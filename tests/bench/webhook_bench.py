"""Webhook benchmark: what the outbox costs a booking, and how fast it delivers.

One command, from the repository root (about 3 minutes on 2 cores):

    .venv/bin/python -m tests.bench.webhook_bench [--bookings 120] [--events 2000] [--runs 3]

1. **Booking p50**, over HTTP through the API (``POST /rdvs``, each on a free
   slot), on three servers one after the other, ``--runs`` times, medians:
   ``main`` (the code before the outbox, a snapshot of ``--base``), ``outbox``
   (this tree, no endpoint) and ``webhooks`` (this tree, an endpoint subscribed
   to RDVs, delivered by the server's worker to a receiver on loopback).  The
   ratio webhooks / main is the cost of the outbox write plus delivery.
2. **Throughput**: ``--events`` usager events written with no worker running,
   an endpoint subscribed to them, then one ``calserver worker`` process
   started: deliveries per second from the first to the last request the
   receiver verified.
3. **Outbox share**, in process (no HTTP, steadier on a busy machine): the
   time of the outbox write (``booking.agenda_outbox.item_written``, timed
   around the call) over the time of the whole booking transaction, for
   ``--bookings`` RDVs written through ``plugins.agenda_writer``.
4. **Latency**: an idle server with its worker; a motif changed ``--changes``
   times, 0.3 s apart; from the event's row (written just before its commit)
   to the receiver having it, p50 and p95.

The receiver verifies every request (``standardwebhooks`` and the HMAC),
so the figures include a receiver that checks signatures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import Connection

from booking import events
from booking import notifications as booking_notifications
from booking.agenda import AgendaWrite
from booking.rules import BookingRefused
from plugins import agenda_writer, timezone_cache
from plugins import storage as plugins_storage
from storage import agents, outbox, scheduling
from storage.database import Database
from tests.bench import results as results_file
from tests.bench.caldav_bench import _snapshot
from tests.bench.servers import REPO
from tests.bench.verdicts import Target, Verdict, check, guarded
from tests.conftest import ADMIN_PASSWORD, Server, free_port
from tests.dates import monday
from tests.protocol.pmi_office import Office, ok, set_up, subscribe
from tests.webhooks.receiver import Receiver

CONFIG = (
    "[server]\nhost = 127.0.0.1\nport = {port}\n"
    "[webhooks]\nallow_http = true\nallowed_networks = 127.0.0.1\nworker = {worker}\n"
    "poll_seconds = 30\n[logging]\nlevel = warning\n"
)
SLOTS = ["09:00", "09:30", "10:00", "10:30", "11:00", "11:30"]


def _cli(source: Path, config: Path, *args: str) -> list[str]:
    main = "import sys; from calserver.cli import main; sys.exit(main())"
    return [sys.executable, "-c", main, "--config", str(config), *args]


def _env(source: Path, database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "CALSERVER_DATABASE_URL": database_url,
        "CALSERVER_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "PYTHONPATH": str(source),
    }


def _serve(source: Path, workdir: Path, worker: bool, extra: str = "") -> Server:
    """A server of the code in ``source`` on a fresh SQLite database
    (``extra``: more config.ini sections)."""
    workdir.mkdir(parents=True)
    port = free_port()
    config = workdir / "config.ini"
    config.write_text(CONFIG.format(port=port, worker="true" if worker else "false") + extra)
    database_url = f"sqlite:///{workdir / 'cal.db'}"
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            _cli(source, config, "serve"),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_env(source, database_url),
            cwd=workdir,
        )
    server = Server(f"http://127.0.0.1:{port}", database_url, process, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server did not start:\n{server.log()}")


def _book_all(office: Office, count: int, usager_ids: list[int] | None = None) -> list[float]:
    """Book ``count`` RDVs on free slots of alice's plages, from the office's
    Monday on (public holidays skipped), for these usagers; the time of each
    booking."""
    timings: list[float] = []
    n = 0
    with office.client("alice") as alice:
        while len(timings) < count:
            week, rest = divmod(n, len(SLOTS) * 5)
            day = office.day + timedelta(weeks=week, days=rest // len(SLOTS))
            n += 1
            booking = {
                "agent_id": office.alice,
                "motif_id": office.motif,
                "lieu_id": office.lieu,
                "starts_at": f"{day.isoformat()}T{SLOTS[rest % len(SLOTS)]}",
                "usager_ids": usager_ids or [],
            }
            started = time.perf_counter()
            answer = alice.post("/rdvs", json=booking)
            elapsed = (time.perf_counter() - started) * 1000
            if answer.status_code == 422 and answer.json()["error"]["code"] == "holiday":
                continue
            ok(answer, 201)
            timings.append(elapsed)
    return timings


def booking_p50(sources: dict[str, Path], root: Path, bookings: int, runs: int) -> dict:
    found: dict[str, list[float]] = {name: [] for name in ("main", "outbox", "webhooks")}
    for run in range(runs):
        for name in found:
            source = sources["main" if name == "main" else "tree"]
            receiver = Receiver().start()
            server = _serve(source, root / f"booking-{name}-{run}", worker=name == "webhooks")
            try:
                office = set_up(server)
                if name == "webhooks":
                    subscribe(office, receiver, "/hook", ["rdv"], initial_sync=False)
                found[name].append(statistics.median(_book_all(office, bookings)))
                if name == "webhooks":
                    receiver.wait_for("/hook", bookings, timeout=60)
            finally:
                server.stop()
                receiver.close()
            print(f"  booking run {run + 1} {name}: p50 {found[name][-1]:.1f} ms", flush=True)
    medians = {name: statistics.median(values) for name, values in found.items()}
    return {**medians, "ratio_webhooks_main": medians["webhooks"] / medians["main"]}


def throughput(root: Path, events: int) -> dict:
    receiver = Receiver().start()
    server = _serve(REPO, root / "throughput", worker=False)
    try:
        office = set_up(server)
        subscribe(office, receiver, "/hook", ["usager"], initial_sync=False)
    finally:
        server.stop()
    db = Database(server.database_url)
    with db.transaction(write=True) as conn:
        for n in range(events):
            scheduling.create_usager(
                conn, {"organisation_id": office.org, "first_name": "U", "last_name": str(n)}
            )
    db.dispose()
    config = root / "throughput" / "config.ini"
    worker = subprocess.Popen(
        _cli(REPO, config, "worker"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(REPO, server.database_url),
    )
    # set_up's usager was created before the endpoint, and no worker ran since:
    # its event is dispatched with the others.
    expected = events + 1
    try:
        arrived = receiver.wait_for("/hook", expected, timeout=600)
        time.sleep(1)  # a duplicate would come now
        arrived = receiver.on("/hook")
    finally:
        worker.terminate()
        worker.wait(10)
        receiver.close()
    span = arrived[-1].at - arrived[0].at
    return {
        "events": expected,
        "delivered": len(arrived),
        "distinct": len({r.headers["webhook-id"] for r in arrived}),
        "verified": sum(r.verified for r in arrived),
        "seconds": span,
        "per_second": (len(arrived) - 1) / span,
    }


def latency(root: Path, changes: int) -> dict:
    receiver = Receiver().start()
    server = _serve(REPO, root / "latency", worker=True)
    try:
        office = set_up(server)
        subscribe(office, receiver, "/hook", ["motif"], initial_sync=False)
        with office.client() as admin:
            for n in range(changes):
                url = f"/organisations/{office.org}/motifs/{office.motif}"
                ok(admin.patch(url, json={"name": f"Consultation {n}"}))
                time.sleep(0.3)
        arrived = receiver.wait_for("/hook", changes, timeout=30)
        db = Database(server.database_url)
        with db.transaction(write=False) as conn:
            delays = []
            for request in arrived:
                event = outbox.event(conn, request.json["meta"]["event_id"])
                assert event is not None
                delays.append(request.at * 1000 - event.created_ms)
        db.dispose()
    finally:
        server.stop()
        receiver.close()
    delays.sort()
    return {
        "changes": changes,
        "seen": len(delays),
        "p50_ms": statistics.median(delays),
        "p95_ms": delays[int(len(delays) * 0.95) - 1],
    }


def outbox_share(root: Path, count: int) -> dict:
    """The outbox's own share of a booking transaction, in process: the time of
    ``item_written`` less the notification scheduling it also runs (that cost
    is the notification bench's, reported here as a guide)."""
    spent: list[float] = []
    scheduling_spent: list[float] = []
    told = plugins_storage.agenda_outbox.item_written
    schedule = booking_notifications.schedule

    def timed_schedule(
        conn: Connection,
        item_id: int,
        old: dict | None,
        new: dict | None,
        writer: str,
        now: datetime | None = None,
    ) -> None:
        started = time.perf_counter()
        schedule(conn, item_id, old, new, writer, now)
        scheduling_spent.append(time.perf_counter() - started)

    def timed(
        conn: Connection,
        item_id: int,
        prepared: AgendaWrite,
        writer: str = "agent",
        now: datetime | None = None,
    ) -> None:
        started = time.perf_counter()
        told(conn, item_id, prepared, writer, now)
        spent.append(time.perf_counter() - started)

    timezone_cache.install()
    db = Database(f"sqlite:///{root / 'share.db'}")
    db.migrate()
    zone = ZoneInfo("Europe/Paris")
    with db.transaction(write=True) as conn:
        org = agents.create_organisation(conn, "O", "o")
        agents.create_agent(
            conn, "alice", organisation=org, role="basic", password="alice-pass-1",
            services_names=("PMI",),
        )  # fmt: skip
        service = scheduling.organisation_services(conn, org)[0]["id"]
        lieu = scheduling.create_lieu(conn, {"organisation_id": org, "name": "L", "address": "A"})
        motif = scheduling.create_motif(
            conn, {"organisation_id": org, "service_id": service, "name": "M"}
        )
        first = datetime.combine(monday(2), datetime.min.time(), zone).replace(hour=9)
        plage = events.build_event(
            zone="Europe/Paris", start=first, end=first + timedelta(hours=3), summary="P",
            uid="p", rrule={"FREQ": "WEEKLY", "BYDAY": ["MO", "TU", "WE", "TH", "FR"]},
            transparent=True, motif_ids=[motif["id"]], lieu_id=lieu["id"],
        )  # fmt: skip
        agenda_writer.put_event(conn, "alice/plages", "p.ics", plage)
    totals: list[float] = []
    outbox_times: list[float] = []
    plugins_storage.agenda_outbox.item_written = timed
    booking_notifications.schedule = timed_schedule
    notification_times: list[float] = []
    try:
        for n in range(count * 2):
            start = first + timedelta(days=n // len(SLOTS), minutes=30 * (n % len(SLOTS)))
            text = events.build_event(
                zone="Europe/Paris", start=start, end=start + timedelta(minutes=30),
                summary="R", uid=f"r{n}", motif_ids=[motif["id"]], lieu_id=lieu["id"],
                organisation_id=org,
            )  # fmt: skip
            spent.clear()
            scheduling_spent.clear()
            started = time.perf_counter()
            try:
                with db.transaction(write=True) as conn:
                    agenda_writer.put_event(conn, "alice/rdv", f"r{n}.ics", text)
            except BookingRefused:
                continue  # a weekend or a public holiday
            totals.append(time.perf_counter() - started)
            outbox_times.append(sum(spent) - sum(scheduling_spent))
            notification_times.append(sum(scheduling_spent))
            if len(totals) == count:
                break
    finally:
        plugins_storage.agenda_outbox.item_written = told
        booking_notifications.schedule = schedule
        db.dispose()
    return {
        "bookings": len(totals),
        "booking_p50_ms": statistics.median(totals) * 1000,
        "outbox_p50_ms": statistics.median(outbox_times) * 1000,
        "notifications_p50_ms": statistics.median(notification_times) * 1000,
        "share": sum(outbox_times) / sum(totals),
    }


# The targets.  The ratio over HTTP moves by 20% from run to run on a
# shared machine; the in-process share of the same cost is the steadier one.
WEBHOOKS_OVER_BEFORE = Target("booking p50, webhooks on / before the outbox", 1.10)
OUTBOX_SHARE = Target("outbox write / booking transaction, in process", 0.10)
DELIVERIES = Target("deliveries per second, one worker process", 300, at_most=False)
LATENCY = Target("commit-to-delivery p50 ms, idle", 50)


def before_the_outbox() -> str:
    """The commit before the one that brought storage/outbox.py."""
    added = results_file.git("log", "--diff-filter=A", "--format=%H", "--", "storage/outbox.py")
    return added.split()[-1] + "^"


def verdicts(booking: dict, share: dict, rate: dict, delay: dict) -> list[Verdict]:
    return [
        WEBHOOKS_OVER_BEFORE.judge(booking["ratio_webhooks_main"]),
        OUTBOX_SHARE.judge(share["share"]),
        DELIVERIES.judge(rate["per_second"]),
        LATENCY.judge(delay["p50_ms"]),
        check("every event delivered", rate["events"], rate["distinct"]),
        check("no event delivered twice", rate["distinct"], rate["delivered"]),
        check("every delivery verified (both signatures)", rate["delivered"], rate["verified"]),
        check("every change seen by the receiver", delay["changes"], delay["seen"]),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.webhook_bench")
    parser.add_argument("--bookings", type=int, default=120)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--changes", type=int, default=40)
    parser.add_argument(
        "--base", default=None, help="the code before the outbox (git rev; default: found)"
    )
    args = parser.parse_args(argv)
    context = results_file.run_context("tests.bench.webhook_bench", argv)
    return guarded(lambda: run_all(args, context))


def run_all(args: argparse.Namespace, context: dict[str, object]) -> int:
    root = Path(tempfile.mkdtemp(prefix="webhook-bench-"))
    base = args.base or before_the_outbox()
    sources = {"main": _snapshot(base, root / "main-src"), "tree": REPO}
    print(f"booking p50 ({args.bookings} bookings x {args.runs} runs) ...", flush=True)
    booking = booking_p50(sources, root, args.bookings, args.runs)
    print(f"throughput ({args.events} events, one worker process) ...", flush=True)
    rate = throughput(root, args.events)
    print(f"outbox share ({args.bookings} bookings in process) ...", flush=True)
    share = outbox_share(root, args.bookings)
    print(f"latency ({args.changes} changes, idle) ...", flush=True)
    delay = latency(root, args.changes)
    table = "\n".join(
        [
            "| measure | value |",
            "|---|---|",
            f"| booking p50, before the outbox ({base}) | {booking['main']:.1f} ms |",
            f"| booking p50, outbox, no endpoint | {booking['outbox']:.1f} ms |",
            f"| booking p50, webhooks on | {booking['webhooks']:.1f} ms |",
            f"| ratio webhooks on / before | {booking['ratio_webhooks_main']:.3f} |",
            f"| outbox write in process: p50 {share['outbox_p50_ms']:.2f} ms of "
            f"{share['booking_p50_ms']:.1f} ms | share {share['share']:.3f} |",
            f"| notification scheduling in the same call (guide) | "
            f"{share['notifications_p50_ms']:.2f} ms |",
            f"| deliveries per second (1 worker) | {rate['per_second']:.0f} |",
            f"| commit-to-delivery p50 / p95 | {delay['p50_ms']:.1f} / {delay['p95_ms']:.1f} ms |",
        ]
    )
    return results_file.report(
        "webhook-bench",
        context,
        table,
        verdicts(booking, share, rate, delay),
        {
            "base": base,
            "sizes": vars(args),
            "booking": booking,
            "share": share,
            "throughput": rate,
            "latency": delay,
        },
        quick=False,
    )


if __name__ == "__main__":
    sys.exit(main())
