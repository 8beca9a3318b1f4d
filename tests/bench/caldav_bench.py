"""CalDAV benchmark: calserver against stock Radicale 3.9 and Xandikos 0.4 on
the same workload, in one run.

    .venv/bin/python -m tests.bench.caldav_bench [--sizes 1000 10000] [--runs 5]
        [--calserver-sizes 100000]

For each size N every server gets the same N-1000 objects loaded directly,
then the same 1000 PUTs over HTTP (500 from one client, 500 from 8 concurrent
clients; the server's CPU time per PUT is read from /proc), then the same
timed reads.  ``--calserver-sizes`` adds sizes run by calserver alone (its
per-item costs and memory against its own at 10,000).  Every answer is checked
against counts computed independently of the servers (see
``workload.expected``): a fast wrong answer is reported as wrong, and a failed
request (error status, timeout) is recorded with its status and time instead
of ending the run.  Prints a table and writes the raw numbers as JSON;
README.md explains both.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import random
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote

import requests

from plugins.caldav import MAX_EXPAND_OCCURRENCES
from tests.bench import results as results_file
from tests.bench import workload
from tests.bench.servers import (
    PASSWORD,
    REPO,
    USER,
    Calserver,
    Radicale,
    Server,
    Xandikos,
)
from tests.bench.verdicts import (
    Target,
    Verdict,
    check,
    failed,
    guarded,
)
from tests.bench.workload import CalObject, Expected

PUT_BATCH = 1000  # objects PUT over HTTP; the rest of N is loaded directly
CLIENTS = 8
SYNC_CHANGES = 10
TIMEOUT = (10.0, 180.0)  # connect, read (seconds): every run ends
WARMUP_TIMEOUT = (10.0, 600.0)  # Radicale parses every object on first access
SLOW = 60.0  # an operation slower than this is not repeated

_DAV, _CAL = "DAV:", "urn:ietf:params:xml:ns:caldav"
_XML_HEAD = '<?xml version="1.0" encoding="utf-8"?>\n'
_NS = f'xmlns:D="{_DAV}" xmlns:C="{_CAL}"'


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def _calendar_query(window: tuple[datetime, datetime], expand: bool) -> str:
    start, end = _utc(window[0]), _utc(window[1])
    data = (
        f'<C:calendar-data><C:expand start="{start}" end="{end}"/></C:calendar-data>'
        if expand
        else "<C:calendar-data/>"
    )
    return (
        f"{_XML_HEAD}<C:calendar-query {_NS}>"
        f"<D:prop><D:getetag/>{data}</D:prop>"
        '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
        f'<C:time-range start="{start}" end="{end}"/>'
        "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"
    )


WEEK_QUERY = _calendar_query(workload.WEEK, expand=False)
MONTH_EXPAND = _calendar_query(workload.MONTH, expand=True)
PROPFIND_ETAGS = f"{_XML_HEAD}<D:propfind {_NS}><D:prop><D:getetag/></D:prop></D:propfind>"


def _sync_body(token: str) -> str:
    return (
        f"{_XML_HEAD}<D:sync-collection {_NS}><D:sync-token>{token}</D:sync-token>"
        "<D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>"
    )


# -- one request, and what its answer says ----------------------------------


@dataclass
class Reply:
    status: int | None  # None: no HTTP answer (timeout, connection error)
    seconds: float
    body: bytes = b""
    error: str = ""

    def fails(self, expected: int) -> str:
        """Why this reply is a failure, or "" when it has the expected status."""
        if self.status is None:
            return f"{self.error} after {self.seconds:.1f} s"
        if self.status != expected:
            return f"HTTP {self.status} after {self.seconds:.1f} s"
        return ""


def _session() -> requests.Session:
    session = requests.Session()
    session.auth = (USER, PASSWORD)
    return session


def request(
    session: requests.Session,
    method: str,
    url: str,
    body: str = "",
    timeout: tuple[float, float] = TIMEOUT,
    **headers: str,
) -> Reply:
    """One timed request: the time includes reading the whole answer."""
    sent = {name.replace("_", "-"): value for name, value in headers.items()}
    if body:
        sent.setdefault("Content-Type", "application/xml; charset=utf-8")
    started = time.perf_counter()
    try:
        answer = session.request(method, url, data=body.encode(), timeout=timeout, headers=sent)
        content = answer.content
    except requests.RequestException as e:
        return Reply(None, time.perf_counter() - started, error=type(e).__name__)
    return Reply(answer.status_code, time.perf_counter() - started, content)


def _responses(body: bytes) -> list[ET.Element]:
    return ET.fromstring(body).findall(f"{{{_DAV}}}response")


def _item_hrefs(body: bytes) -> list[str]:
    """Hrefs of the calendar objects in a multistatus (not the collection itself)."""
    hrefs = (r.findtext(f"{{{_DAV}}}href") or "" for r in _responses(body))
    return [unquote(h.rsplit("/", 1)[-1]) for h in hrefs if not h.endswith("/")]


def _vevents(body: bytes) -> int:
    """VEVENT components in all calendar-data of a multistatus."""
    texts = (e.text or "" for e in ET.fromstring(body).iter(f"{{{_CAL}}}calendar-data"))
    return sum(line.strip() == "BEGIN:VEVENT" for t in texts for line in t.splitlines())


# -- measurements -------------------------------------------------------------


@dataclass
class Measure:
    """Median time of the successful repetitions, or the first failure."""

    seconds: float | None = None
    runs: list[float] = field(default_factory=list)
    failure: str = ""
    failed_after: float | None = None  # seconds spent on the failed request
    answer: int | None = None  # count found in the answer (objects, instances...)
    expected: int | None = None
    mismatch: str = ""  # what else is wrong in the answer

    @property
    def wrong(self) -> bool:
        return bool(self.mismatch) or (self.expected is not None and self.answer != self.expected)

    def fail(self, reply: Reply, why: str) -> None:
        self.failure, self.failed_after = why, reply.seconds

    def close(self) -> Measure:
        if self.runs and not self.failure:
            self.seconds = statistics.median(self.runs)
        return self


# An operation: one repetition -> (reply, count read from the answer).
Operation = Callable[[], tuple[Reply, int | None]]


def repeat(
    operation: Operation, runs: int, expected: int | None = None, status: int = 207
) -> Measure:
    measure = Measure(expected=expected)
    for _ in range(runs):
        reply, count = operation()
        if why := reply.fails(status):
            measure.fail(reply, why)
            break
        measure.runs.append(reply.seconds)
        measure.answer = count
        if measure.wrong or reply.seconds > SLOW:
            break
    return measure.close()


def put_all(url: str, objects: list[CalObject], clients: int) -> Measure:
    """PUT new objects from ``clients`` concurrent keep-alive sessions; seconds = wall time."""
    slices = [objects[i::clients] for i in range(clients)]
    failures: list[str] = []
    barrier = threading.Barrier(clients + 1)

    def client(batch: list[CalObject]) -> None:
        session = _session()
        barrier.wait()
        for obj in batch:
            reply = request(
                session,
                "PUT",
                url + obj.href,
                obj.text,
                If_None_Match="*",
                Content_Type="text/calendar; charset=utf-8",
            )
            if why := reply.fails(201):
                failures.append(f"{obj.href}: {why}")

    threads = [threading.Thread(target=client, args=(s,)) for s in slices]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    failure = f"{len(failures)} failed, first: {failures[0]}" if failures else ""
    return Measure(
        runs=[seconds], failure=failure, answer=len(objects) - len(failures), expected=len(objects)
    ).close()


@dataclass
class ServerResult:
    load_seconds: float
    warmup_seconds: float
    warmup_failure: str  # a first-access request that failed, if any
    start_rss_kib: int  # after start and warm-up: the server's floor
    peak_rss_kib: int
    ops: dict[str, Measure]
    put_cpu_ms: float | None = None  # server CPU time per PUT, over all the PUTs


def bench_server(
    server: Server, objects: list[CalObject], expected: Expected, runs: int, seed: int
) -> ServerResult:
    """Load, start, PUT, read, measure memory; the caller stops the server."""
    n_loaded = len(objects) - PUT_BATCH
    started = time.perf_counter()
    server.load(objects[:n_loaded])
    load_seconds = time.perf_counter() - started
    server.start()
    url, session = server.collection_url, _session()

    def sync(token: str) -> Reply:
        return request(session, "REPORT", url, _sync_body(token))

    # First access builds Radicale's caches (items, sync history): real but one-off.
    started = time.perf_counter()
    warmup = [
        request(session, "PROPFIND", url, PROPFIND_ETAGS, WARMUP_TIMEOUT, Depth="1"),
        request(session, "REPORT", url, WEEK_QUERY, WARMUP_TIMEOUT, Depth="1"),
        request(session, "REPORT", url, _sync_body(""), WARMUP_TIMEOUT),
    ]
    warmup_seconds = time.perf_counter() - started
    warmup_failure = "; ".join(filter(None, (r.fails(207) for r in warmup)))
    start_rss_kib = server.rss_kib()

    ops: dict[str, Measure] = {}
    half = PUT_BATCH // 2
    cpu_before = server.cpu_seconds()
    ops["put_1"] = put_all(url, objects[n_loaded : n_loaded + half], 1)
    ops["put_8"] = put_all(url, objects[n_loaded + half :], CLIENTS)
    put_cpu_ms = (server.cpu_seconds() - cpu_before) * 1000 / PUT_BATCH

    def counted(method: str, body: str, count: Callable[[bytes], int], **headers: str) -> Operation:
        def operation() -> tuple[Reply, int | None]:
            reply = request(session, method, url, body, **headers)
            try:
                return reply, count(reply.body) if reply.status in (200, 207) else None
            except ET.ParseError:
                return reply, None  # not XML: shown as a wrong answer

        return operation

    n = len(objects)
    ops["report_week"] = repeat(
        counted("REPORT", WEEK_QUERY, lambda b: len(_item_hrefs(b)), Depth="1"),
        runs,
        expected.week_objects,
    )
    # Past calserver's documented cap on the instances of one expanded answer
    # (at 100,000 objects the month holds ~24,000), the right answer is its 400.
    capped = server.name == "calserver" and expected.month_instances > MAX_EXPAND_OCCURRENCES
    ops["expand_month"] = repeat(
        counted("REPORT", MONTH_EXPAND, _vevents, Depth="1"),
        runs,
        None if capped else expected.month_instances,
        status=400 if capped else 207,
    )
    ops["propfind_1"] = repeat(
        counted("PROPFIND", PROPFIND_ETAGS, lambda b: len(_item_hrefs(b)), Depth="1"), runs, n
    )
    ops["sync_initial"] = repeat(
        counted("REPORT", _sync_body(""), lambda b: len(_item_hrefs(b))), runs, n
    )
    ops["get_collection"] = repeat(
        counted("GET", "", lambda b: b.count(b"BEGIN:VEVENT")), runs, n, status=200
    )
    ops["sync_incremental"] = _incremental_sync(session, url, sync, n, runs, seed)
    return ServerResult(
        load_seconds,
        warmup_seconds,
        warmup_failure,
        start_rss_kib,
        server.peak_rss_kib(),
        ops,
        put_cpu_ms,
    )


def _incremental_sync(
    session: requests.Session, url: str, sync: Callable[[str], Reply], n: int, runs: int, seed: int
) -> Measure:
    """Per repetition: PUT 10 edited objects, then time the sync from the token before them."""
    picks = random.Random(seed).sample(range(n), SYNC_CHANGES * runs)
    measure = Measure(expected=SYNC_CHANGES)
    reply = sync("")
    for run in range(runs):
        token = (
            ET.fromstring(reply.body).findtext(f"{{{_DAV}}}sync-token")
            if reply.status == 207
            else None
        )
        if not token:
            measure.fail(reply, f"no sync token ({reply.fails(207) or 'empty'})")
            break
        edited = [
            workload.modified(i, seed, run + 1)
            for i in picks[run * SYNC_CHANGES : (run + 1) * SYNC_CHANGES]
        ]
        for obj in edited:
            put = request(
                session,
                "PUT",
                url + obj.href,
                obj.text,
                Content_Type="text/calendar; charset=utf-8",
            )
            if why := put.fails(204):
                measure.fail(put, f"edit PUT {why}")
                break
        if measure.failure:
            break
        reply = sync(token)
        if why := reply.fails(207):
            measure.fail(reply, why)
            break
        measure.runs.append(reply.seconds)
        hrefs = _item_hrefs(reply.body)
        measure.answer = len(hrefs)
        if set(hrefs) != {o.href for o in edited}:
            measure.mismatch = "the hrefs returned are not the ones edited"
        if measure.wrong:
            break
    return measure.close()


# -- report ----------------------------------------------------------------

LABELS = {
    "put_1": f"PUT new, 1 client ({PUT_BATCH // 2})",
    "put_8": f"PUT new, {CLIENTS} clients ({PUT_BATCH // 2})",
    "report_week": "REPORT one week (etag+data)",
    "expand_month": "REPORT expand one month",
    "propfind_1": "PROPFIND Depth 1 (getetag)",
    "sync_initial": "sync-collection initial",
    "sync_incremental": f"sync-collection after {SYNC_CHANGES}",
    "get_collection": "GET whole collection",
}
PEERS = ("radicale", "xandikos")
PEER_NAMES = {"radicale": "Radicale", "xandikos": "Xandikos"}
# Targets at the largest size shared by all: peer time / calserver time at least this.
TARGETS = {
    (peer, op): Target(f"{LABELS[op]}: {PEER_NAMES[peer]}/calserver", limit, at_most=False)
    for peer, op, limit in (
        ("radicale", "put_1", 40.0),
        ("radicale", "put_8", 40.0),
        ("radicale", "report_week", 50.0),
        ("radicale", "expand_month", 15.0),
        ("xandikos", "expand_month", 5.0),
        ("radicale", "sync_initial", 10.0),
        ("xandikos", "sync_initial", 5.0),
        ("radicale", "sync_incremental", 20.0),
        ("radicale", "propfind_1", 15.0),
        ("xandikos", "propfind_1", 5.0),
        ("radicale", "get_collection", 5.0),
    )
}
RSS_TARGET = Target("peak RSS (VmHWM) calserver/Radicale", 1.0)
# calserver's own growth, largest size over the reference size (seconds per
# PUT, per object returned for the week REPORT, seconds for the incremental
# sync; peak RSS).
SCALING_TARGETS = {
    "put_1": Target("calserver PUT (1 client), largest/reference N", 1.5),
    "report_week": Target(
        "calserver one-week REPORT per object returned, largest/reference N", 1.5
    ),
    "sync_incremental": Target("calserver incremental sync, largest/reference N", 1.5),
}
RSS_GROWTH = Target("calserver peak RSS, largest/reference N", 2.0)
TARGET_SIZE = 10_000  # the targets hold from this size on (Radicale's costs grow with N)
QUICK = {"sizes": [PUT_BATCH], "runs": 2}


def _cell(measure: Measure, op: str) -> str:
    if measure.failure:
        return f"FAIL {measure.failure}"
    assert measure.seconds is not None
    value = (
        f"{PUT_BATCH // 2 / measure.seconds:8.1f} PUT/s"
        if op.startswith("put")
        else f"{measure.seconds:8.3f} s  "
    )
    check = (
        f" n={measure.answer}"
        if not measure.wrong
        else f" WRONG n={measure.answer}/{measure.expected} {measure.mismatch}"
    )
    return value + check


def speedup(peer: Measure, ours: Measure) -> tuple[float | None, str]:
    """Peer time / calserver time; a lower bound when only the peer failed."""
    if ours.seconds is None or ours.wrong:
        return None, "-"
    if peer.seconds is not None and not peer.wrong:
        ratio = peer.seconds / ours.seconds
        return ratio, f"{ratio:.1f}x"
    if peer.failed_after:
        ratio = peer.failed_after / ours.seconds
        return ratio, f">{ratio:.1f}x (failed)"
    return None, "-"


def render(results: dict[int, dict[str, ServerResult]], expected: dict[int, Expected]) -> str:
    lines = []
    for n, by_server in results.items():
        names = [name for name in (*PEERS, "calserver") if name in by_server]
        peers = [p for p in PEERS if p in by_server and "calserver" in by_server]
        ours = by_server.get("calserver")
        lines += [
            "",
            f"N = {n}  ({n - PUT_BATCH} loaded directly, {PUT_BATCH} PUT over HTTP;"
            f" expected: {expected[n].week_objects} objects in the week,"
            f" {expected[n].month_instances} instances in the month)",
            f"{'operation':30} "
            + "".join(f"{name:30} " for name in names)
            + " ".join(f"{PEER_NAMES[p]}/calserver" for p in peers),
        ]
        for op, label in LABELS.items():
            cells = "".join(f"{_cell(by_server[name].ops[op], op):30} " for name in names)
            ratios = " ".join(
                f"{speedup(by_server[p].ops[op], by_server['calserver'].ops[op])[1]:19}"
                for p in peers
            )
            lines.append(f"{label:30} {cells}{ratios}")
        rows = (
            ("peak RSS (VmHWM)", lambda r: f"{r.peak_rss_kib / 1024:8.1f} MiB"),
            ("RSS after start + warm-up", lambda r: f"{r.start_rss_kib / 1024:8.1f} MiB"),
            (
                "server CPU per PUT",
                lambda r: "-" if r.put_cpu_ms is None else f"{r.put_cpu_ms:8.2f} ms",
            ),
            ("direct load (not HTTP)", lambda r: f"{r.load_seconds:8.3f} s"),
            (
                "first access (warm-up)",
                lambda r: (
                    f"FAIL {r.warmup_failure}" if r.warmup_failure else f"{r.warmup_seconds:8.3f} s"
                ),
            ),
        )
        for label, value in rows:
            cells = "".join(f"{value(by_server[name]):30} " for name in names)
            lines.append(f"{label:30} {cells}")
        if ours is not None and "radicale" in by_server:
            share = ours.peak_rss_kib / by_server["radicale"].peak_rss_kib
            lines.append(f"{'peak RSS calserver/Radicale':30} {share:.2f}")
    return "\n".join(lines)


def answer_checks(results: dict[int, dict[str, ServerResult]]) -> list[Verdict]:
    """Every timed answer of both servers against the workload's expected counts.

    A wrong answer from calserver fails the run; from a peer it is reported
    (Xandikos writes expanded instances its own way; from Radicale it would
    mean the workload or the harness is wrong), and a target on that
    operation then has no ratio.  A request that failed fails the run for
    calserver; for a peer it is reported (Radicale's one-month expand can
    exceed the read timeout on a loaded machine) and a target on that
    operation is judged on the lower bound, the time it spent failing."""
    out: list[Verdict] = []
    for n, by_server in sorted(results.items()):
        for name, r in by_server.items():
            reference = name != "calserver"
            if r.warmup_failure:
                out.append(failed(f"{name} first access at N={n}", r.warmup_failure, reference))
            for op, m in r.ops.items():
                what = f"{name} {LABELS[op]} at N={n}"
                if m.failure:
                    out.append(failed(what, m.failure, reference))
                elif m.mismatch:
                    out.append(failed(what, m.mismatch, reference))
                elif reference and m.wrong:
                    out.append(failed(what, f"expected {m.expected}, got {m.answer}", True))
                else:
                    out.append(check(what, m.expected, m.answer))
    return out


def verdicts(
    results: dict[int, dict[str, ServerResult]], expected: dict[int, Expected], gated: bool
) -> list[Verdict]:
    """The targets at the largest size all servers ran and across calserver's
    sizes, then the answer checks.  The targets are set for N >= ``TARGET_SIZE``:
    below it they are guides."""
    out: list[Verdict] = []
    shared = [n for n in sorted(results) if len(results[n]) > 1] or sorted(results)
    big = shared[-1]
    ours = results[big].get("calserver")
    if ours is not None:
        for (peer, op), target in TARGETS.items():
            if peer in results[big]:
                ratio = speedup(results[big][peer].ops[op], ours.ops[op])[0]
                out.append(target.judge(ratio, gated and big >= TARGET_SIZE, f"N={big}"))
        if "radicale" in results[big]:
            share = ours.peak_rss_kib / results[big]["radicale"].peak_rss_kib
            out.append(RSS_TARGET.judge(share, gated and big >= TARGET_SIZE, f"N={big}"))
    sizes = [n for n in sorted(results) if "calserver" in results[n]]
    if len(sizes) > 1:
        largest = sizes[-1]
        reference = TARGET_SIZE if largest > TARGET_SIZE and TARGET_SIZE in sizes else sizes[0]
        where = f"N={largest} vs N={reference}"
        scaling_gated = gated and largest >= TARGET_SIZE

        def cost(n: int, op: str) -> float | None:
            seconds = results[n]["calserver"].ops[op].seconds
            per = expected[n].week_objects if op == "report_week" else 1
            return None if seconds is None else seconds / per

        for op, target in SCALING_TARGETS.items():
            a, b = cost(reference, op), cost(largest, op)
            ratio = None if a is None or b is None else b / a
            out.append(target.judge(ratio, scaling_gated, where))
        if largest > TARGET_SIZE:
            growth = (
                results[largest]["calserver"].peak_rss_kib
                / results[reference]["calserver"].peak_rss_kib
            )
            out.append(RSS_GROWTH.judge(growth, scaling_gated, where))
    return out + answer_checks(results)


# -- command line -------------------------------------------------------------


def _snapshot(rev: str, folder: Path) -> Path:
    """The files of commit ``rev``, for a run that the edits of the tree cannot reach."""
    folder.mkdir()
    archive = subprocess.run(
        ["git", "archive", rev], cwd=REPO, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


SERVER_CODE = ("calserver", "storage", "plugins", "booking", "feeds")


def _context(rev: str | None) -> dict[str, object]:
    """What was measured: the calserver commit (or dirty tree), versions."""
    return {
        "calserver_commit": results_file.git("rev-parse", "--short", rev or "HEAD"),
        "uncommitted_changes": rev is None
        and bool(results_file.git("status", "--porcelain", "--", *SERVER_CODE)),
        "radicale": importlib.metadata.version("radicale"),
        "xandikos": Xandikos.version(),
        "python": platform.python_version(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.caldav_bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[1000, 10000],
        help=f"calendar sizes N (each >= {PUT_BATCH})",
    )
    parser.add_argument(
        "--calserver-sizes",
        type=int,
        nargs="*",
        default=[],
        help="more sizes run by calserver alone (e.g. 100000: its costs against its own)",
    )
    parser.add_argument("--runs", type=int, default=5, help="repetitions per timed read")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke-check the harness: sizes {QUICK['sizes']}, {QUICK['runs']} runs,"
        " targets reported but not gated",
    )
    parser.add_argument("--seed", type=int, default=2027)
    parser.add_argument(
        "--servers",
        nargs="+",
        choices=[*PEERS, "calserver"],
        default=[*PEERS, "calserver"],
    )
    parser.add_argument("--keep", action="store_true", help="keep the servers' data folders")
    parser.add_argument(
        "--calserver-rev",
        metavar="REV",
        help="benchmark this git commit of calserver (default: the working "
        "tree, which may change during a long run)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.runs, args.calserver_sizes = QUICK["sizes"], QUICK["runs"], []
    if min(args.sizes + args.calserver_sizes) < PUT_BATCH or args.runs < 1:
        parser.error(f"sizes must be >= {PUT_BATCH} and runs >= 1")
    return guarded(lambda: run(args, results_file.run_context("tests.bench.caldav_bench", argv)))


def run(args: argparse.Namespace, context: dict[str, object]) -> int:
    measured = _context(args.calserver_rev)
    print(
        f"calserver {measured['calserver_commit']}"
        f"{' + uncommitted changes' if measured['uncommitted_changes'] else ''},"
        f" Radicale {measured['radicale']}, Xandikos {measured['xandikos']},"
        f" {os.cpu_count()} CPUs",
        flush=True,
    )
    results: dict[int, dict[str, ServerResult]] = {}
    expected: dict[int, Expected] = {}
    root = Path(tempfile.mkdtemp(prefix="caldav-bench-"))
    try:
        source = (
            _snapshot(args.calserver_rev, root / "calserver-src") if args.calserver_rev else REPO
        )
        solo = set(args.calserver_sizes) - set(args.sizes)
        for n in sorted({*args.sizes, *solo}):
            objects = workload.generate(n, args.seed)
            expected[n] = workload.expected(objects)
            results[n] = {}
            for name in (*PEERS, "calserver"):
                if name not in args.servers or (n in solo and name != "calserver"):
                    continue
                workdir = root / f"{name}-{n}"
                workdir.mkdir()
                server: Server = (
                    Radicale(workdir)
                    if name == "radicale"
                    else Xandikos(workdir)
                    if name == "xandikos"
                    else Calserver(workdir, source)
                )
                print(f"N={n}: {name} ...", flush=True)
                try:
                    results[n][name] = bench_server(
                        server, objects, expected[n], args.runs, args.seed
                    )
                except Exception:
                    print(server.log_tail())
                    raise
                finally:
                    server.stop()
    finally:
        if args.keep:
            print(f"data kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    ratios = {
        n: {
            peer: {op: speedup(by[peer].ops[op], by["calserver"].ops[op])[0] for op in LABELS}
            for peer in PEERS
            if peer in by and "calserver" in by
        }
        for n, by in results.items()
    }
    return results_file.report(
        "caldav-bench",
        context,
        render(results, expected),
        verdicts(results, expected, gated=not args.quick),
        {
            "sizes": args.sizes,
            "calserver_sizes": args.calserver_sizes,
            "runs": args.runs,
            "seed": args.seed,
            "put_batch": PUT_BATCH,
            "clients": CLIENTS,
            "measured": measured,
            "expected": {n: asdict(e) for n, e in expected.items()},
            "results": {
                n: {name: asdict(r) for name, r in by.items()} for n, by in results.items()
            },
            "ratios_peer_over_calserver": ratios,
        },
        args.quick,
    )


if __name__ == "__main__":
    raise SystemExit(main())
