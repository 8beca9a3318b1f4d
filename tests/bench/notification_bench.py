"""Notification benchmark: due reminders found through the index, and what
notifications cost a booking.

One command, from the repository root (``--quick``: small sizes, a smoke
check of the harness whose targets are only guides):

    .venv/bin/python -m tests.bench.notification_bench [--rdvs 500000] [--bookings 120] [--runs 3]

1. **Due reminders**: a SQLite database holding the reminders (email and SMS
   rows) of ``--rdvs`` future RDVs, due over the next 90 days, plus those of
   ``DUE_NOW`` RDVs due within the next minute; the query the worker finds
   them with (``storage.notifications.due_rows``) timed ``--repeat`` times,
   median (the target), and the worker's whole claim (the same query, the
   lease and each usager's link renewed; in a transaction rolled back each
   time) as a guide.  The same at a hundredth of the size shows the cost
   does not grow with the table (a guide).  Checked: both return exactly the
   rows due in that minute.
2. **Booking p50 with notifications on**, over HTTP through the API, every
   RDV with a usager who has an email and a mobile number: the code before
   notifications (a snapshot of ``--base``) against this tree sending
   through an SMTP server (aiosmtpd) and an SMS provider on loopback;
   ``--runs`` times each, medians.  Checked: every usager's confirmation
   arrived.
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
from tests.bench import results as results_file
from tests.bench.caldav_bench import _snapshot
from tests.bench.servers import REPO
from tests.bench.verdicts import Target, Verdict, check, guarded
from tests.bench.webhook_bench import _book_all, _serve
from tests.notifications.fakes import SMS_TOKEN, SmsProvider, SmtpServer, wait_for
from tests.protocol.pmi_office import ok, set_up

DUE_NOW = 40
DAY_MS = 86_400_000
FIND_MS = Target("finding the next minute's reminders, ms", 20)
CLAIM_MS = Target("claiming them (lease, links renewed), ms", 20)
ON_OVER_OFF = Target("booking p50, notifications on / before notifications", 1.10)
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


def booking_p50(sources: dict[str, Path], root: Path, bookings: int, runs: int) -> dict:
    smtp, provider = SmtpServer().start(), SmsProvider().start()
    found: dict[str, list[float]] = {"before": [], "on": []}
    arrived = 0
    try:
        for run in range(runs):
            for name in found:
                extra = NOTIFYING.format(smtp=smtp.port, sms=provider.url) if name == "on" else ""
                source = sources["before" if name == "before" else "tree"]
                server = _serve(source, root / f"booking-{name}-{run}", False, extra)
                try:
                    office = set_up(server)
                    with office.client() as admin:
                        usager = {"phone": "06 12 34 56 78", "email": f"bench-{run}@example.org"}
                        url = f"/organisations/{office.org}/usagers/{office.usager}"
                        ok(admin.patch(url, json=usager))
                    found[name].append(
                        statistics.median(_book_all(office, bookings, [office.usager]))
                    )
                    if name == "on":
                        address = f"bench-{run}@example.org"
                        wait_for(lambda a=address: len(smtp.mailbox.to(a)) >= bookings, timeout=120)
                        arrived += len(smtp.mailbox.to(address))
                finally:
                    server.stop()
                print(f"  booking run {run + 1} {name}: p50 {found[name][-1]:.1f} ms", flush=True)
    finally:
        smtp.stop()
        provider.stop()
    medians = {name: statistics.median(values) for name, values in found.items()}
    return {**medians, "ratio": medians["on"] / medians["before"], "emails": arrived}


def before_notifications() -> str:
    """The commit before the one that brought storage/notifications.py."""
    added = results_file.git(
        "log", "--diff-filter=A", "--format=%H", "--", "storage/notifications.py"
    )
    return added.split()[-1] + "^"


def verdicts(big: dict, small: dict, booking: dict, args: argparse.Namespace) -> list[Verdict]:
    gated = not args.quick
    due_rows = 2 * DUE_NOW
    return [
        FIND_MS.judge(big["find_ms"], gated, f"{big['rdvs']} RDVs"),
        FIND_MS.judge(small["find_ms"], False, f"{small['rdvs']} RDVs"),
        CLAIM_MS.judge(big["claim_ms"], False, f"{big['rdvs']} RDVs"),
        ON_OVER_OFF.judge(booking["ratio"], gated),
        check("the next minute's reminders are found", due_rows, big["found"]),
        check("the claim takes the next minute's reminders", due_rows, big["claimed"]),
        check("every booking's confirmation emailed", args.bookings * args.runs, booking["emails"]),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.notification_bench")
    parser.add_argument("--rdvs", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--bookings", type=int, default=120)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--base", default=None, help="the code before notifications (git rev)")
    parser.add_argument("--quick", action="store_true", help="small sizes; targets as guides")
    args = parser.parse_args(argv)
    if args.quick:
        args.rdvs, args.bookings, args.runs, args.repeat = 20_000, 20, 1, 10
    context = results_file.run_context("tests.bench.notification_bench", argv)
    return guarded(lambda: run_all(args, context))


def run_all(args: argparse.Namespace, context: dict[str, object]) -> int:
    root = Path(tempfile.mkdtemp(prefix="notification-bench-"))
    base = args.base or before_notifications()
    print(f"due reminders among {args.rdvs} RDVs ...", flush=True)
    big = claim_ms(root, args.rdvs, args.repeat)
    small = claim_ms(root, max(args.rdvs // 100, 1), args.repeat)
    sources = {"before": _snapshot(base, root / "before-src"), "tree": REPO}
    print(f"booking p50 ({args.bookings} bookings x {args.runs} runs) ...", flush=True)
    booking = booking_p50(sources, root, args.bookings, args.runs)
    table = "\n".join(
        [
            "| measure | value |",
            "|---|---|",
            f"| next minute found, {big['rdvs']} RDVs | {big['find_ms']:.2f} ms |",
            f"| next minute found, {small['rdvs']} RDVs | {small['find_ms']:.2f} ms |",
            f"| next minute claimed, {big['rdvs']} RDVs | {big['claim_ms']:.2f} ms |",
            f"| booking p50, before notifications ({base}) | {booking['before']:.1f} ms |",
            f"| booking p50, notifications on | {booking['on']:.1f} ms |",
            f"| ratio on / before | {booking['ratio']:.3f} |",
        ]
    )
    return results_file.report(
        "notification-bench",
        context,
        table,
        verdicts(big, small, booking, args),
        {"base": base, "sizes": vars(args), "claim": [big, small], "booking": booking},
        quick=args.quick,
    )


if __name__ == "__main__":
    sys.exit(main())
