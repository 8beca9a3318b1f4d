"""Notification benchmark: due reminders found through the index, and what
notifications cost a booking.

One command, from the repository root (``--quick``: small sizes, a smoke
check of the harness whose targets are only guides):

    .venv/bin/python -m tests.bench.notification_bench [--rdvs 500000] [--runs 8] [--base found]

1. **Due reminders**: a SQLite database holding the reminders (email and SMS
   rows) of ``--rdvs`` future RDVs, due over the next 90 days, plus those of
   ``DUE_NOW`` RDVs due within the next minute; the query the worker finds
   them with (``storage.notifications.due_rows``) timed ``--repeat`` times,
   median (the target), and the worker's whole claim (the same query, the
   lease and each usager's link renewed; in a transaction rolled back each
   time) as a guide.  The same at a hundredth of the size shows the cost
   does not grow with the table (a guide).  Checked: both return exactly the
   rows due in that minute.
2. **Booking p50, notifications on / off**, over HTTP through the API, this
   tree, every RDV with a usager who has an email and a mobile number, in
   interleaved rounds of ``--bookings`` (``tests.bench.onoff``): *off*, the
   RDV's switch ``notify_usagers`` off (the API's documented switch: no
   message and no reminder is written for the usager, the outbox row is);
   *on*, the switch on, the worker sending each confirmation through an SMTP
   server (aiosmtpd) and an SMS provider on loopback while the bookings go
   on.  For two deployments of the worker, each with its own server: in the
   server's process (the default: the verdict) and in a ``calserver worker``
   process of its own (a guide).  ``--runs`` rounds of each arm, the median
   of the rounds' p50s.  With ``--base``, the tree of that commit (before
   notifications) is booked in the same rounds, as a guide.  Checked: every
   "on" booking's confirmation arrived by email and by SMS, no "off" one's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from storage import notifications
from storage.database import Database
from storage.outbox import now_ms
from tests.bench import onoff
from tests.bench import results as results_file
from tests.bench.caldav_bench import _snapshot
from tests.bench.onoff import IN_PROCESS, WORKER_PROCESS, Arm, Deployment, deploy
from tests.bench.servers import REPO
from tests.bench.sinks import Sinks
from tests.bench.verdicts import Kind, Target, Verdict, check, guarded
from tests.notifications.fakes import SMS_TOKEN
from tests.protocol.pmi_office import ok

DUE_NOW = 40
DAY_MS = 86_400_000
FIND_MS = Target("finding the next minute's reminders, ms", 20)
CLAIM_MS = Target("claiming them (lease, links renewed), ms", 20)
# The verdict is the deployment the README recommends (workers in the
# server's process, the default); the other is reported.
ON_OVER_OFF = Target("booking p50, notifications on / off", 1.10)
BEFORE_GUIDE = Target("booking p50, notifications on / before them", 1.10, kind=Kind.GUIDE)
CHUNK = 20_000


class Rollback(Exception):
    """Leaves the timed claim's transaction without a trace."""


def _fill(db: Database, rdvs: int, start_ms: int) -> None:
    """The reminders of ``rdvs`` RDVs spread over 90 days from an hour ahead,
    and of DUE_NOW RDVs due within the next minute."""
    rdv = {"starts_at": "2100-01-01T00:00:00+00:00", "ends_at": "2100-01-01T00:30:00+00:00"}
    spread = 90 * DAY_MS // max(rdvs, 1)

    def rows(first: int, last: int, due) -> list[notifications.Scheduled]:  # type: ignore[no-untyped-def]
        return [
            notifications.Scheduled(i, 1, "usager", i, channel, "reminder", rdv, due(i))
            for i in range(first, last)
            for channel in ("email", "sms")
        ]

    for first in range(0, rdvs, CHUNK):
        last = min(rdvs, first + CHUNK)
        with db.transaction(write=True) as conn:
            notifications.schedule(
                conn, rows(first, last, lambda i: start_ms + 3_600_000 + i * spread), start_ms
            )
    with db.transaction(write=True) as conn:
        due_now = rows(rdvs, rdvs + DUE_NOW, lambda i: start_ms + (i - rdvs) * 1000)
        notifications.schedule(conn, due_now, start_ms)


def claim_ms(root: Path, rdvs: int, repeat: int) -> dict:
    """Median time of claiming the next minute's reminders among ``rdvs``."""
    db = Database(f"sqlite:///{root / f'reminders-{rdvs}.db'}")
    db.migrate()
    start = now_ms()
    _fill(db, rdvs, start)
    finding, claiming, found, claimed = [], [], 0, 0
    for _ in range(repeat):
        try:
            with db.transaction(write=True) as conn:
                began = time.perf_counter()
                found = len(notifications.due_rows(conn, start + 60_000, limit=4 * DUE_NOW))
                finding.append((time.perf_counter() - began) * 1000)
                began = time.perf_counter()
                rows = notifications.claim(conn, start + 60_000, 60_000, limit=4 * DUE_NOW)
                claiming.append((time.perf_counter() - began) * 1000)
                claimed = len(rows)
                raise Rollback
        except Rollback:
            pass
    db.dispose()
    return {
        "rdvs": rdvs,
        "find_ms": statistics.median(finding),
        "claim_ms": statistics.median(claiming),
        "found": found,
        "claimed": claimed,
    }


NOTIFYING = (
    "[smtp]\nhost = 127.0.0.1\nport = {smtp}\nsender = rdv@bench.example.fr\n"
    "[sms]\nprovider = json_http\nurl = {sms}\ntoken = " + SMS_TOKEN + "\n"
)


def _notification_arms(deployment: Deployment, sinks: Sinks, bookings: int) -> list[Arm]:
    """off: the RDV's ``notify_usagers`` switch off; on: the switch on, and
    after the round, wait for its confirmations (an email and an SMS each)."""
    usager = [deployment.office.usager]
    address, number = _contact(deployment)
    rounds_on = [0]

    def arrived(_d: Deployment) -> None:
        rounds_on[0] += 1
        sinks.wait("emails", address, rounds_on[0] * bookings)
        sinks.wait("sms", number, rounds_on[0] * bookings)

    return [
        Arm("off", lambda d: {"usager_ids": usager, "notify_usagers": False}),
        Arm("on", lambda d: {"usager_ids": usager, "notify_usagers": True}, after=arrived),
    ]


def _contact(deployment: Deployment) -> tuple[str, str]:
    """The usager's address and mobile number (E.164) in this deployment."""
    n = {IN_PROCESS: 1, WORKER_PROCESS: 2}.get(deployment.name, 3)
    return f"bench-{deployment.name.replace(' ', '-')}@example.org", f"+3361234560{n}"


def _reachable(deployment: Deployment) -> None:
    """Give the office's usager an email and a mobile number."""
    address, number = _contact(deployment)
    phone = "0" + number.removeprefix("+33")
    with deployment.office.client() as admin:
        url = f"/organisations/{deployment.office.org}/usagers/{deployment.office.usager}"
        ok(admin.patch(url, json={"phone": phone, "email": address}))


def booking_p50(root: Path, bookings: int, runs: int, before: Path | None) -> dict:
    """Booking p50, notifications off and on, for each deployment of the
    worker (and, as a guide, the tree ``before`` notifications), in
    interleaved rounds."""
    sinks = Sinks()
    extra = NOTIFYING.format(smtp=sinks.smtp_port, sms=sinks.sms_url)
    deployments: list[Deployment] = []
    try:
        plan = []
        if before is not None:
            old = deploy(before, root / "booking-before", "before notifications", extra)
            deployments.append(old)
            _reachable(old)
            arm = Arm("before", lambda d: {"usager_ids": [d.office.usager]})
            plan.append((old, [arm]))
        for name in (IN_PROCESS, WORKER_PROCESS):
            where = root / f"booking-{name.replace(' ', '-')}"
            deployment = deploy(REPO, where, name, extra)
            deployments.append(deployment)
            _reachable(deployment)
            plan.append((deployment, _notification_arms(deployment, sinks, bookings)))
        found = onoff.medians(onoff.rounds(plan, runs, bookings))
        time.sleep(1)  # a late or duplicate message would come now
        arrived = sinks.counts()
    finally:
        for deployment in deployments:
            deployment.stop()
        sinks.close()
    for deployment in deployments:
        if deployment.name in (IN_PROCESS, WORKER_PROCESS):
            address, number = _contact(deployment)
            found[deployment.name]["expected"] = bookings * runs
            found[deployment.name]["emails"] = arrived["emails"].get(address, 0)
            found[deployment.name]["sms"] = arrived["sms"].get(number, 0)
    if before is not None:
        found["before"] = found.pop("before notifications")["before"]
    return found


def before_notifications() -> str:
    """The commit before the one that brought storage/notifications.py."""
    added = results_file.git(
        "log", "--diff-filter=A", "--format=%H", "--", "storage/notifications.py"
    )
    return added.split()[-1] + "^"


def verdicts(big: dict, small: dict, booking: dict, args: argparse.Namespace) -> list[Verdict]:
    gated = not args.quick
    due_rows = 2 * DUE_NOW
    found = [
        FIND_MS.judge(big["find_ms"], gated, f"{big['rdvs']} RDVs"),
        FIND_MS.judge(small["find_ms"], False, f"{small['rdvs']} RDVs"),
        CLAIM_MS.judge(big["claim_ms"], False, f"{big['rdvs']} RDVs"),
        ON_OVER_OFF.judge(booking[IN_PROCESS]["ratio"], gated, IN_PROCESS),
        ON_OVER_OFF.judge(booking[WORKER_PROCESS]["ratio"], False, WORKER_PROCESS),
    ]
    if "before" in booking:
        found.append(BEFORE_GUIDE.judge(booking[IN_PROCESS]["on"] / booking["before"]))
    found += [
        check("the next minute's reminders are found", due_rows, big["found"]),
        check("the claim takes the next minute's reminders", due_rows, big["claimed"]),
    ]
    for name in (IN_PROCESS, WORKER_PROCESS):
        arm = booking[name]
        found += [
            check(
                f"each 'on' booking emailed once, no 'off' one ({name})",
                arm["expected"],
                arm["emails"],
            ),
            check(
                f"each 'on' booking texted once, no 'off' one ({name})", arm["expected"], arm["sms"]
            ),
        ]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.notification_bench")
    parser.add_argument("--rdvs", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--bookings", type=int, default=40, help="bookings per round")
    parser.add_argument("--runs", type=int, default=8, help="rounds of each arm")
    parser.add_argument(
        "--base",
        default=None,
        help="also book the tree of this git rev, as a guide ('found': the commit before "
        "notifications)",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes; targets as guides")
    args = parser.parse_args(argv)
    if args.quick:
        args.rdvs, args.bookings, args.runs, args.repeat = 20_000, 20, 2, 10
    context = results_file.run_context("tests.bench.notification_bench", argv)
    return guarded(lambda: run_all(args, context))


def run_all(args: argparse.Namespace, context: dict[str, object]) -> int:
    root = Path(tempfile.mkdtemp(prefix="notification-bench-"))
    base = before_notifications() if args.base == "found" else args.base
    print(f"due reminders among {args.rdvs} RDVs ...", flush=True)
    big = claim_ms(root, args.rdvs, args.repeat)
    small = claim_ms(root, max(args.rdvs // 100, 1), args.repeat)
    before = _snapshot(base, root / "before-src") if base else None
    print(f"booking p50 ({args.bookings} bookings x {args.runs} rounds) ...", flush=True)
    booking = booking_p50(root, args.bookings, args.runs, before)
    lines = [
        "| measure | value |",
        "|---|---|",
        f"| next minute found, {big['rdvs']} RDVs | {big['find_ms']:.2f} ms |",
        f"| next minute found, {small['rdvs']} RDVs | {small['find_ms']:.2f} ms |",
        f"| next minute claimed, {big['rdvs']} RDVs | {big['claim_ms']:.2f} ms |",
    ]
    for name in (IN_PROCESS, WORKER_PROCESS):
        lines += onoff.table_rows(name, booking[name])
    if before is not None:
        lines.append(f"| booking p50, before notifications ({base}) | {booking['before']:.1f} ms |")
    return results_file.report(
        "notification-bench",
        context,
        "\n".join(lines),
        verdicts(big, small, booking, args),
        {"base": base, "sizes": vars(args), "claim": [big, small], "booking": booking},
        quick=args.quick,
    )


if __name__ == "__main__":
    sys.exit(main())
