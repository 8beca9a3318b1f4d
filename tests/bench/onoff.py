"""Booking p50 with a feature on and off, in the same tree and the same run.

The webhook and notification benchmarks ask what a feature costs a booking:
the same server code, its outbox row written either way, with the feature's
work switched off (no webhook endpoint; the RDV's ``notify_usagers`` off) and
on (an endpoint receiving every RDV; the usager's confirmation emailed and
texted), the worker doing that work while the bookings go on.  On a shared
machine two servers measured minutes apart differ by more than the 10 % at
stake, so the arms are measured in **interleaved rounds** on one running
server (off, on, then on, off, ...), each round's p50 kept, and the ratio is
of the medians of those p50s.

A ``Deployment`` is one way to run the workers, on a fresh SQLite database:
``in-process`` (``calserver serve`` with its workers, the default) or
``worker process`` (``calserver serve`` with ``[webhooks] worker`` and
``[notifications] worker`` false, beside one ``calserver worker``; on SQLite
such a worker has no wake-up from the server's commits and looks every
``poll_seconds``, here 1 s so that it works while the bookings go on).
"""

from __future__ import annotations

import itertools
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from storage import deliveries
from storage.database import Database
from tests.conftest import ADMIN_PASSWORD, Server, free_port
from tests.protocol.pmi_office import Office, ok, set_up

CONFIG = (
    "[server]\nhost = 127.0.0.1\nport = {port}\n"
    "[webhooks]\nallow_http = true\nallowed_networks = 127.0.0.1\nworker = {worker}\n"
    "poll_seconds = {poll}\n[notifications]\nworker = {worker}\npoll_seconds = {poll}\n"
    "[logging]\nlevel = warning\n"
)
SLOTS = ["09:00", "09:30", "10:00", "10:30", "11:00", "11:30"]
IN_PROCESS, WORKER_PROCESS = "in-process", "worker process"
# How often a worker process of its own looks at a SQLite database (it has
# no other signal); the in-process workers are woken by each commit.
SEPARATE_POLL_S = 1
QUIET_S = 0.5  # the pause before every round (``quiet``)


def cli(config: Path, *args: str) -> list[str]:
    main = "import sys; from calserver.cli import main; sys.exit(main())"
    return [sys.executable, "-c", main, "--config", str(config), *args]


def env(source: Path, database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "CALSERVER_DATABASE_URL": database_url,
        "CALSERVER_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "PYTHONPATH": str(source),
    }


def serve(source: Path, workdir: Path, worker: bool, extra: str = "", poll_s: int = 30) -> Server:
    """A server of the code in ``source`` on a fresh SQLite database, its
    workers in process or not (``extra``: more config.ini sections)."""
    workdir.mkdir(parents=True)
    port = free_port()
    config = workdir / "config.ini"
    worker_text = "true" if worker else "false"
    config.write_text(CONFIG.format(port=port, worker=worker_text, poll=poll_s) + extra)
    database_url = f"sqlite:///{workdir / 'cal.db'}"
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            cli(config, "serve"),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env(source, database_url),
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


def _starts(office: Office) -> Iterator[str]:
    """alice's 30-minute slots, weekdays from the office's Monday on."""
    for n in itertools.count():
        week, rest = divmod(n, len(SLOTS) * 5)
        day = office.day + timedelta(weeks=week, days=rest // len(SLOTS))
        yield f"{day.isoformat()}T{SLOTS[rest % len(SLOTS)]}"


@dataclass
class Deployment:
    name: str
    server: Server
    office: Office
    worker: subprocess.Popen[bytes] | None = None
    outbox: bool = True  # False: a tree from before the outbox
    starts: Iterator[str] = field(init=False)

    def __post_init__(self) -> None:
        self.starts = _starts(self.office)

    @property
    def pids(self) -> list[int]:
        """The server's process and the worker's, if it has its own."""
        return [p.pid for p in (self.server.process, self.worker) if p is not None]

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.terminate()
            self.worker.wait(20)
        self.server.stop()


def deploy(source: Path, workdir: Path, name: str, extra: str = "") -> Deployment:
    """``name``: IN_PROCESS or WORKER_PROCESS (the worker started after the
    office is set up)."""
    separate = name == WORKER_PROCESS
    poll = SEPARATE_POLL_S if separate else 30
    server = serve(source, workdir, worker=not separate, extra=extra, poll_s=poll)
    try:
        office = set_up(server)
    except Exception:
        server.stop()
        raise
    deployment = Deployment(name, server, office)
    if separate:
        with (workdir / "worker.log").open("wb") as log:
            deployment.worker = subprocess.Popen(
                cli(workdir / "config.ini", "worker"),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env(source, server.database_url),
                cwd=workdir,
            )
    return deployment


def book(deployment: Deployment, count: int, fields: dict[str, Any]) -> list[float]:
    """Book ``count`` RDVs on alice's next free slots (public holidays
    skipped), with these extra fields; each booking's time in ms."""
    office = deployment.office
    timings: list[float] = []
    with office.client("alice") as alice:
        ok(alice.get("/me"))  # untimed: the connection made, the login known
        while len(timings) < count:
            booking = {
                "agent_id": office.alice,
                "motif_id": office.motif,
                "lieu_id": office.lieu,
                "starts_at": next(deployment.starts),
                **fields,
            }
            started = time.perf_counter()
            answer = alice.post("/rdvs", json=booking)
            elapsed = (time.perf_counter() - started) * 1000
            if answer.status_code == 422 and answer.json()["error"]["code"] == "holiday":
                continue
            ok(answer, 201)
            timings.append(elapsed)
    return timings


def _nothing(_deployment: Deployment) -> None:
    return None


@dataclass(frozen=True)
class Arm:
    """One side of the comparison: the bookings' extra fields, what to do
    before a round (subscribe...) and after it (wait for what it sent, so
    that the next round starts with the worker idle)."""

    name: str
    fields: Callable[[Deployment], dict[str, Any]]
    before: Callable[[Deployment], None] = _nothing
    after: Callable[[Deployment], None] = _nothing


def dispatched(deployment: Deployment, timeout: float = 30.0) -> None:
    """Wait until the worker has dispatched every outbox event written so far
    (a worker process of its own looks only every second): an endpoint made
    before that would be handed the previous round's last events."""
    db = Database(deployment.server.database_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with db.transaction(write=False) as conn:
                if not deliveries.has_pending_events(conn):
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{deployment.name}: events still pending after {timeout} s")
            time.sleep(0.05)
    finally:
        db.dispose()


def quiet(deployment: Deployment) -> None:
    """Before every round, whichever the arm: the workers have dispatched what
    came before, and a short pause lets the last round's tail (its receipts,
    a paced round) end.  Only the "on" rounds used to wait (for their
    deliveries, and before subscribing), and in those runs the "on" rounds
    came out faster than the "off" ones in either order: the same wait
    before both keeps such a difference out of the ratio."""
    if deployment.outbox:
        dispatched(deployment)
    time.sleep(QUIET_S)


def cpu_s(pids: list[int]) -> float:
    """CPU time (user + system, seconds) these processes have used so far."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def rounds(
    plan: list[tuple[Deployment, list[Arm]]], runs: int, bookings: int
) -> dict[str, dict[str, dict[str, list[float]]]]:
    """``runs`` times, each deployment's arms in turn, ``bookings`` each:
    every round's p50 (ms) and the CPU time its server and worker processes
    used per booking (ms, the work after the round included), by deployment
    and arm.  The arms' order flips from one run to the next (off, on; on,
    off; ...): the round that follows another server's, or the other arm's,
    is not always the same arm's."""
    found: dict[str, dict[str, dict[str, list[float]]]] = {
        d.name: {arm.name: {"p50": [], "cpu": []} for arm in arms} for d, arms in plan
    }
    for run in range(runs):
        for deployment, arms in plan:
            for arm in arms if run % 2 == 0 else arms[::-1]:
                arm.before(deployment)
                quiet(deployment)
                used = cpu_s(deployment.pids)
                p50 = statistics.median(book(deployment, bookings, arm.fields(deployment)))
                arm.after(deployment)
                cpu = (cpu_s(deployment.pids) - used) * 1000 / bookings
                found[deployment.name][arm.name]["p50"].append(p50)
                found[deployment.name][arm.name]["cpu"].append(cpu)
                print(
                    f"  run {run + 1} {deployment.name} {arm.name}: p50 {p50:.1f} ms, "
                    f"CPU {cpu:.1f} ms per booking",
                    flush=True,
                )
    return found


def medians(found: dict[str, dict[str, dict[str, list[float]]]]) -> dict[str, dict[str, Any]]:
    """Per deployment: each arm's median of round p50s and of CPU per booking
    (``cpu_<arm>``), the rounds, and on / off."""
    summary: dict[str, dict[str, Any]] = {}
    for name, arms in found.items():
        summary[name] = {"rounds": arms}
        for arm, measured in arms.items():
            summary[name][arm] = statistics.median(measured["p50"])
            summary[name][f"cpu_{arm}"] = statistics.median(measured["cpu"])
        if "on" in arms and "off" in arms:
            summary[name]["ratio"] = summary[name]["on"] / summary[name]["off"]
            summary[name]["cpu_ratio"] = summary[name]["cpu_on"] / summary[name]["cpu_off"]
    return summary


def table_rows(name: str, arm: dict) -> list[str]:
    """Table rows of one deployment: the medians, each round's off/on p50s,
    the ratio, and the CPU per booking (a guide, steadier than times on a
    shared machine)."""
    pairs = zip(arm["rounds"]["off"]["p50"], arm["rounds"]["on"]["p50"], strict=True)
    each = ", ".join(f"{off:.1f}/{on:.1f}" for off, on in pairs)
    return [
        f"| booking p50 off / on, {name} (rounds: {each}) | "
        f"{arm['off']:.1f} / {arm['on']:.1f} ms |",
        f"| ratio on / off, {name} | {arm['ratio']:.3f} |",
        f"| server CPU per booking off / on, {name} | "
        f"{arm['cpu_off']:.1f} / {arm['cpu_on']:.1f} ms (ratio {arm['cpu_ratio']:.2f}) |",
    ]
