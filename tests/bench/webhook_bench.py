"""Webhook benchmark: what webhooks cost a booking, and how fast they are delivered.

One command, from the repository root (5 to 10 minutes on 2 cores):

    .venv/bin/python -m tests.bench.webhook_bench [--bookings 40] [--runs 8] [--base found]

1. **Booking p50, webhooks on / off**, over HTTP through the API (``POST
   /rdvs``, each on a free slot), this tree, in interleaved rounds of
   ``--bookings`` (``tests.bench.onoff``): *off*, the organisation has no
   webhook endpoint (the outbox row is written all the same: it is what every
   consumer reads); *on*, an endpoint subscribed to RDVs at a receiver that
   verifies every request, the worker delivering while the bookings go on.
   For two deployments of the worker, each with its own server: in the
   server's process (``calserver serve``, the default: the verdict) and in a
   ``calserver worker`` process of its own (a guide).  ``--runs`` rounds of
   each arm, the median of the rounds' p50s.  With ``--base``, the tree of
   that commit (before the outbox) is booked in the same rounds, as a guide.
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
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from booking import events
from booking import notifications as booking_notifications
from booking.agenda import AgendaWrite
from booking.rules import BookingRefused
from plugins import agenda_writer, timezone_cache
from plugins import storage as plugins_storage
from storage import agents, outbox, scheduling
from storage.database import Database
from tests.bench import onoff
from tests.bench import results as results_file
from tests.bench.caldav_bench import _snapshot
from tests.bench.onoff import IN_PROCESS, SLOTS, WORKER_PROCESS, Arm, Deployment, deploy
from tests.bench.servers import REPO
from tests.bench.sinks import Sinks
from tests.bench.verdicts import Kind, Target, Verdict, check, guarded
from tests.dates import monday
from tests.protocol.pmi_office import ok, set_up, subscribe
from tests.webhooks.receiver import Receiver


def _hooks(found: dict, path: str) -> dict[str, int]:
    return found["hooks"].get(path, {"delivered": 0, "verified": 0, "distinct": 0})


def _webhook_arms(deployment: Deployment, sinks: Sinks, bookings: int) -> list[Arm]:
    """off: the organisation has no endpoint; on: one subscribed to RDVs at
    the sinks' receiver, created before the round and deleted once the
    receiver has had every delivery of it."""
    path = "/" + deployment.name.replace(" ", "-")
    url = f"/organisations/{deployment.office.org}/webhook_endpoints"
    endpoint: dict[str, int] = {}
    rounds_on = [0]

    def subscribe(d: Deployment) -> None:
        onoff.dispatched(d)  # else the new endpoint gets the last round's events
        with d.office.client() as admin:
            body = {"target_url": sinks.receiver_url + path, "subscriptions": ["rdv"]}
            created = ok(admin.post(url, json={**body, "initial_sync": False}), 201)
        sinks.secret(created["secret"])
        endpoint["id"] = created["id"]

    def drain_and_unsubscribe(d: Deployment) -> None:
        rounds_on[0] += 1
        sinks.wait("hooks", path, rounds_on[0] * bookings)
        with d.office.client() as admin:
            gone = admin.delete(f"{url}/{endpoint['id']}")
        assert gone.status_code == 204, gone.text

    return [
        Arm("off", lambda d: {}),
        Arm("on", lambda d: {}, before=subscribe, after=drain_and_unsubscribe),
    ]


def booking_p50(root: Path, bookings: int, runs: int, before: Path | None) -> dict:
    """Booking p50, webhooks off and on, for each deployment of the worker
    (and, as a guide, the tree ``before`` the outbox), in interleaved rounds."""
    sinks = Sinks()
    deployments: list[Deployment] = []
    try:
        plan = []
        if before is not None:
            old = deploy(before, root / "booking-before", "before the outbox")
            old.outbox = False
            deployments.append(old)
            plan.append((old, [Arm("before", lambda d: {})]))
        for name in (IN_PROCESS, WORKER_PROCESS):
            deployment = deploy(REPO, root / f"booking-{name.replace(' ', '-')}", name)
            deployments.append(deployment)
            plan.append((deployment, _webhook_arms(deployment, sinks, bookings)))
        found = onoff.medians(onoff.rounds(plan, runs, bookings))
        time.sleep(1)  # a duplicate would come now
        arrived = sinks.counts()
    finally:
        for deployment in deployments:
            deployment.stop()
        sinks.close()
    for name in (IN_PROCESS, WORKER_PROCESS):
        found[name]["expected"] = bookings * runs
        found[name].update(_hooks(arrived, "/" + name.replace(" ", "-")))
    if before is not None:
        found["before"] = found.pop("before the outbox")["before"]
    return found


def throughput(root: Path, events: int) -> dict:
    receiver = Receiver().start()
    server = onoff.serve(REPO, root / "throughput", worker=False)
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
        onoff.cli(config, "worker"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=onoff.env(REPO, server.database_url),
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
    server = onoff.serve(REPO, root / "latency", worker=True)
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


# The targets.  The verdict is the deployment the README recommends
# (workers in the server's process, the default); the other is reported.
WEBHOOKS_ON_OFF = Target("booking p50, webhooks on / off", 1.10)
BEFORE_GUIDE = Target("booking p50, webhooks on / before the outbox", 1.10, kind=Kind.GUIDE)
OUTBOX_SHARE = Target("outbox write / booking transaction, in process", 0.10)
DELIVERIES = Target("deliveries per second, one worker process", 300, at_most=False)
LATENCY = Target("commit-to-delivery p50 ms, idle", 50)


def before_the_outbox() -> str:
    """The commit before the one that brought storage/outbox.py."""
    added = results_file.git("log", "--diff-filter=A", "--format=%H", "--", "storage/outbox.py")
    return added.split()[-1] + "^"


def verdicts(booking: dict, share: dict, rate: dict, delay: dict) -> list[Verdict]:
    found = [
        WEBHOOKS_ON_OFF.judge(booking[IN_PROCESS]["ratio"], True, IN_PROCESS),
        WEBHOOKS_ON_OFF.judge(booking[WORKER_PROCESS]["ratio"], False, WORKER_PROCESS),
    ]
    if "before" in booking:
        found.append(BEFORE_GUIDE.judge(booking[IN_PROCESS]["on"] / booking["before"]))
    found += [
        OUTBOX_SHARE.judge(share["share"]),
        DELIVERIES.judge(rate["per_second"]),
        LATENCY.judge(delay["p50_ms"]),
        check("every event delivered", rate["events"], rate["distinct"]),
        check("no event delivered twice", rate["distinct"], rate["delivered"]),
        check("every delivery verified (both signatures)", rate["delivered"], rate["verified"]),
        check("every change seen by the receiver", delay["changes"], delay["seen"]),
    ]
    for name in (IN_PROCESS, WORKER_PROCESS):
        arm = booking[name]
        found += [
            check(f"every booking delivered once ({name})", arm["expected"], arm["distinct"]),
            check(f"no booking delivered twice ({name})", arm["distinct"], arm["delivered"]),
            check(f"every booking's delivery verified ({name})", arm["delivered"], arm["verified"]),
        ]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.webhook_bench")
    parser.add_argument("--bookings", type=int, default=40, help="bookings per round")
    parser.add_argument("--runs", type=int, default=8, help="rounds of each arm")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--changes", type=int, default=40)
    parser.add_argument(
        "--base",
        default=None,
        help="also book the tree of this git rev, as a guide ('found': the commit before "
        "the outbox)",
    )
    args = parser.parse_args(argv)
    context = results_file.run_context("tests.bench.webhook_bench", argv)
    return guarded(lambda: run_all(args, context))


def run_all(args: argparse.Namespace, context: dict[str, object]) -> int:
    root = Path(tempfile.mkdtemp(prefix="webhook-bench-"))
    base = before_the_outbox() if args.base == "found" else args.base
    before = _snapshot(base, root / "before-src") if base else None
    print(f"booking p50 ({args.bookings} bookings x {args.runs} rounds) ...", flush=True)
    booking = booking_p50(root, args.bookings, args.runs, before)
    print(f"throughput ({args.events} events, one worker process) ...", flush=True)
    rate = throughput(root, args.events)
    print(f"outbox share ({args.bookings} bookings in process) ...", flush=True)
    share = outbox_share(root, args.bookings)
    print(f"latency ({args.changes} changes, idle) ...", flush=True)
    delay = latency(root, args.changes)
    lines = ["| measure | value |", "|---|---|"]
    for name in (IN_PROCESS, WORKER_PROCESS):
        lines += onoff.table_rows(name, booking[name])
    if before is not None:
        lines.append(f"| booking p50, before the outbox ({base}) | {booking['before']:.1f} ms |")
    lines += [
        f"| outbox write in process: p50 {share['outbox_p50_ms']:.2f} ms of "
        f"{share['booking_p50_ms']:.1f} ms | share {share['share']:.3f} |",
        f"| notification scheduling in the same call (guide) | "
        f"{share['notifications_p50_ms']:.2f} ms |",
        f"| deliveries per second (1 worker) | {rate['per_second']:.0f} |",
        f"| commit-to-delivery p50 / p95 | {delay['p50_ms']:.1f} / {delay['p95_ms']:.1f} ms |",
    ]
    return results_file.report(
        "webhook-bench",
        context,
        "\n".join(lines),
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
