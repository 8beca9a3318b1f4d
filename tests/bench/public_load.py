"""Load test of the public booking page: N simulated usagers at once (50 by
default) each doing the whole journey against one server with M agents (50):
service, motif, lieux with next availability, a week of créneaux, the
instructions, identity, the emailed code (read from a real aiosmtpd server;
the server's notification worker sends it, and the RDVs' confirmations), and
the confirmation (or, when the slot went meanwhile, the nearest one).

One command, from the repository root::

    .venv/bin/python -m tests.bench.public_load                 # 50 usagers, 50 agents, SQLite
    .venv/bin/python -m tests.bench.public_load --database postgresql://postgres@127.0.0.1/bench
    .venv/bin/python -m tests.bench.public_load --quick         # 10 usagers, 10 agents

Each usager reads every page ``--think`` seconds on average (2 s by
default, from half to one and a half times that; people do not click
faster), the 50 starting within the first of those: their journeys overlap
all along.  ``--think 0`` sends every click at once, a worst case no crowd
of people makes.

Times are the server's own (its access log: route template and duration of
each request), per page.  Targets: no 5xx, no double booking (no agent holds
two RDVs that overlap; every confirmed usager holds exactly one RDV), the
créneaux page's p50 at most 50 ms, every page's p95 at most 300 ms.  The
weight of each page (HTML) and of the stylesheet is reported (no JavaScript,
no font is served).
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory

import httpx

from tests.bench import results
from tests.bench.verdicts import Kind, SetupError, Target, Verdict, check, guarded
from tests.conftest import ADMIN_PASSWORD, Server, run_cli, start_server
from tests.dates import working_monday
from tests.notifications.fakes import SmtpServer, wait_for
from tests.web import journey
from tests.web.office import WEEKDAYS, ok

API = "/api/v1"
CRENEAUX = "/prendre-rdv/{slug}/motifs/{motif}/creneaux"
TARGETS = {
    "creneaux_p50_ms": Target("créneaux page p50 (ms)", 50),
    "page_p95_ms": Target("p95 of every page (ms)", 300),
}
ACCESS = re.compile(r"calserver\.access: (\w+) (/prendre-rdv/\S*|/static/\S*) (\d{3}) ([\d.]+)ms")
SLOT = re.compile(r'href="(/prendre-rdv/[^"]+/rdv\?[^"]+)"')


@dataclass
class Office:
    slug: str
    org: int
    service: int
    motif: int
    lieu: int
    agents: list[int]
    first_day: str


@dataclass
class Outcome:
    booked: bool = False
    retried: bool = False
    errors: list[str] = field(default_factory=list)
    weights: dict[str, int] = field(default_factory=dict)


def set_up(server: Server, agents: int, first_day: str) -> Office:
    with httpx.Client(base_url=server.url + API, auth=("admin", ADMIN_PASSWORD), timeout=60) as a:
        org = ok(a.get("/me"))["organisations"][0]["id"]
        ok(a.patch(f"/organisations/{org}", json={"slug": "mairie-bench", "name": "Mairie"}))
        service = ok(a.post(f"/organisations/{org}/services", json={"name": "Accueil"}), 201)
        lieu = ok(
            a.post(f"/organisations/{org}/lieux", json={"name": "Mairie", "address": "1 place"}),
            201,
        )["id"]
        motif = ok(
            a.post(
                f"/organisations/{org}/motifs",
                json={"name": "Carte d'identité", "service_id": service["id"],
                      "bookable_by": "everyone", "instructions_before": "Venez avec vos papiers."},
            ),
            201,
        )["id"]  # fmt: skip
        ids = []
        for n in range(agents):
            login = f"agent{n:03d}"
            new = {"login": login, "services": ["Accueil"], "password": f"{login}-password"}
            agent = ok(a.post(f"/organisations/{org}/agents", json=new), 201)["id"]
            ids.append(agent)
            for start, end in (("09:00", "12:00"), ("14:00", "17:00")):
                plage = {"motif_ids": [motif], "lieu_id": lieu, "first_day": first_day,
                         "start_time": start, "end_time": end,
                         "recurrence": {"frequency": "weekly", "weekdays": WEEKDAYS}}  # fmt: skip
                ok(a.post(f"/agents/{agent}/plages", json=plage), 201)
    return Office("mairie-bench", org, service["id"], motif, lieu, ids, first_day)


def usager(
    server: Server, smtp: SmtpServer, office: Office, n: int, seed: int, think: float
) -> Outcome:
    """One usager's journey, reading each page ``think`` seconds on average
    (from half to one and a half times), starting within the first ``think``;
    what came of it."""
    rng = random.Random(seed + n)
    outcome = Outcome()
    time.sleep(rng.uniform(0, think))
    base = f"{server.url}/prendre-rdv/{office.slug}"
    email = f"usager{n:04d}@example.org"

    def get(url: str, kind: str, **kw: object) -> httpx.Response:
        time.sleep(rng.uniform(0.5 * think, 1.5 * think))
        answer = client.get(url, **kw)  # type: ignore[arg-type]
        outcome.weights[kind] = len(answer.content)
        if answer.status_code >= 500:
            outcome.errors.append(f"{kind}: {answer.status_code}")
        return answer

    with httpx.Client(timeout=120) as client:
        get(base, "service")
        get(f"{base}/services/{office.service}", "motif")
        get(f"{base}/motifs/{office.motif}", "lieux")
        week = (
            date.fromisoformat(office.first_day) + timedelta(days=7 * rng.randrange(4))
        ).isoformat()
        page = get(f"{base}/motifs/{office.motif}/creneaux", "creneaux",
                   params={"lieu": office.lieu, "semaine": week})  # fmt: skip
        slots = SLOT.findall(page.text)
        if not slots:
            outcome.errors.append("no slot offered")
            return outcome
        chosen = server.url + rng.choice(slots).replace("&amp;", "&")
        get(chosen, "instructions")
        query = dict(httpx.URL(chosen).params)
        form = get(f"{base}/motifs/{office.motif}/identite", "identite", params=query)
        data = {**journey.identity(email=email, last_name=f"Usager{n}"), **query,
                "csrf": journey.csrf(form)}  # fmt: skip
        asked = client.post(f"{base}/motifs/{office.motif}/identite", data=data)
        if asked.status_code != 303:
            outcome.errors.append(f"identity: {asked.status_code}")
            return outcome
        message = wait_for(lambda: journey.verifications(smtp.mailbox, email), timeout=120)[-1]  # type: ignore[index]
        code, _ = journey.code_and_link(message)
        request_url = server.url + asked.headers["Location"]
        code_page = get(request_url, "code")
        done = client.post(request_url, data={"code": code, "csrf": journey.csrf(code_page)})
        if done.status_code == 303 and done.headers["Location"].endswith("/autre-creneau"):
            outcome.retried = True
            other = get(server.url + done.headers["Location"], "autre-creneau")
            values = re.findall(r'name="debut" value="([^"]+)"', other.text)
            if not values:
                outcome.errors.append("taken, and nothing near")
                return outcome
            done = client.post(server.url + done.headers["Location"],
                               data={"debut": values[0], "csrf": journey.csrf(other)})  # fmt: skip
        if done.status_code != 303 or not done.headers["Location"].endswith("/rendez-vous"):
            outcome.errors.append(f"confirm: {done.status_code}")
            return outcome
        confirmation = get(server.url + done.headers["Location"], "confirmation")
        outcome.booked = "Votre rendez-vous est confirmé" in confirmation.text
        if outcome.booked:
            get(f"{base}/rendez-vous.ics", "ics")
    return outcome


def booked_rdvs(server: Server, office: Office) -> list[dict]:
    with httpx.Client(base_url=server.url + API, auth=("admin", ADMIN_PASSWORD), timeout=60) as a:
        found = []
        for agent in office.agents:
            found += [r for r in ok(a.get(f"/agents/{agent}/rdvs")) if r["status"] == "unknown"]
    return found


def overlaps(rdvs: list[dict]) -> int:
    """RDVs of one agent overlapping another of the same agent."""
    by_agent: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for r in rdvs:
        by_agent[r["agent_id"]].append((r["starts_at"], r["ends_at"]))
    count = 0
    for spans in by_agent.values():
        spans.sort()
        count += sum(1 for a, b in zip(spans, spans[1:], strict=False) if b[0] < a[1])
    return count


def server_times(log: str) -> dict[str, list[float]]:
    """Server-side durations (ms) per page kind, from the access log."""
    kinds = {
        "/prendre-rdv/{slug}": "service",
        "/prendre-rdv/{slug}/services/{service}": "motif",
        "/prendre-rdv/{slug}/motifs/{motif}": "lieux",
        CRENEAUX: "creneaux",
        "/prendre-rdv/{slug}/motifs/{motif}/rdv": "instructions",
        "/prendre-rdv/{slug}/motifs/{motif}/identite": "identite",
        "/prendre-rdv/{slug}/demandes/{request}": "code",
        "/prendre-rdv/{slug}/demandes/{request}/autre-creneau": "autre-creneau",
        "/prendre-rdv/{slug}/rendez-vous": "confirmation",
        "/prendre-rdv/{slug}/rendez-vous.ics": "ics",
    }
    found: dict[str, list[float]] = defaultdict(list)
    for method, route, _status, ms in ACCESS.findall(log):
        kind = kinds.get(route)
        if kind is not None:
            found[f"{method} {kind}"].append(float(ms))
    return found


def statuses(log: str) -> list[int]:
    return [int(status) for _m, _r, status, _ms in ACCESS.findall(log)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--usagers", type=int, default=50)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--database", default="", help="a database URL (default: a new SQLite)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--think",
        type=float,
        default=2.0,
        help="seconds a usager reads each page, on average (0: every click at once)",
    )
    parser.add_argument("--quick", action="store_true", help="10 usagers, 10 agents")
    args = parser.parse_args(argv)
    if args.quick:
        args.usagers, args.agents = 10, 10
    context = results.run_context("tests.bench.public_load", argv)
    first_day = working_monday(1).isoformat()
    with TemporaryDirectory() as folder:
        url = args.database or f"sqlite:///{folder}/bench.db"
        migrated = run_cli(url, "migrate")
        if migrated.returncode != 0:
            raise SetupError(migrated.stderr)
        smtp = SmtpServer().start()
        config = (
            f"[smtp]\nhost = 127.0.0.1\nport = {smtp.port}\n"
            "[webhooks]\nworker = false\n"
            "[m365]\nworker = false\n"
        )
        server = start_server(url, Path(folder) / "server", extra_config=config)
        try:
            office = set_up(server, args.agents, first_day)
            outcomes: list[Outcome] = [Outcome() for _ in range(args.usagers)]
            start_line = len(server.log())

            def one(n: int) -> None:
                try:
                    outcomes[n] = usager(server, smtp, office, n, args.seed, args.think)
                except Exception as e:  # a failed journey is a result, not a crash
                    outcomes[n] = Outcome(errors=[f"{type(e).__name__}: {e}"])

            started = time.perf_counter()
            threads = [threading.Thread(target=one, args=(n,)) for n in range(args.usagers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - started
            log = server.log()[start_line:]
            rdvs = booked_rdvs(server, office)
            css = len(httpx.get(server.url + "/static/calserver.css").content)
        finally:
            server.stop()
            smtp.stop()
    times = server_times(log)
    verdicts: list[Verdict] = []
    booked = sum(o.booked for o in outcomes)
    verdicts.append(check("every usager booked", args.usagers, booked))
    verdicts.append(check("answers 5xx", 0, sum(1 for s in statuses(log) if s >= 500)))
    for line in [line for line in log.splitlines() if " ERROR " in line][:5]:
        print(f"server: {line}", file=sys.stderr)  # the log holds no personal data
    verdicts.append(
        check("journeys with an error", [], [e for o in outcomes for e in o.errors][:5])
    )
    verdicts.append(check("overlapping RDVs of one agent", 0, overlaps(rdvs)))
    verdicts.append(check("RDVs booked", booked, len(rdvs)))
    gated = not args.quick
    creneaux = times.get("GET creneaux", [])
    verdicts.append(
        TARGETS["creneaux_p50_ms"].judge(statistics.median(creneaux) if creneaux else None, gated)
    )
    worst = max(((percentile(v, 0.95), k) for k, v in times.items()), default=(None, ""))
    verdicts.append(TARGETS["page_p95_ms"].judge(worst[0], gated, worst[1]))
    weights: dict[str, int] = {}
    for o in outcomes:
        for kind, size in o.weights.items():
            weights[kind] = max(weights.get(kind, 0), size)
    journey_weight = sum(v for k, v in weights.items() if k not in ("autre-creneau", "ics")) + css
    lines = [
        f"{args.usagers} usagers, {args.agents} agents, think {args.think:g} s, {elapsed:.1f} s; "
        f"{sum(o.retried for o in outcomes)} slot(s) taken meanwhile and rebooked",
        f"{'page':<24}{'n':>5}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'HTML bytes':>12}",
    ]
    for kind in sorted(times):
        values = times[kind]
        page = kind.split(" ", 1)[1]
        lines.append(
            f"{kind:<24}{len(values):>5}{statistics.median(values):>9.1f}"
            f"{percentile(values, 0.95):>9.1f}{max(values):>9.1f}{weights.get(page, 0):>12}"
        )
    lines.append(
        f"stylesheet {css} bytes; no JavaScript, no font; one journey {journey_weight} bytes"
    )
    verdicts.append(Verdict("journey weight, HTML + CSS (bytes)", Kind.GUIDE, True, journey_weight))
    data = {
        "sizes": {"usagers": args.usagers, "agents": args.agents, "think_s": args.think},
        "elapsed_s": round(elapsed, 1),
        "times_ms": {
            k: {"n": len(v), "p50": statistics.median(v), "p95": percentile(v, 0.95)}
            for k, v in times.items()
        },
        "weights": {**weights, "css": css, "journey": journey_weight},
    }
    return results.report("public_load", context, "\n".join(lines), verdicts, data, args.quick)


def main(argv: list[str] | None = None) -> int:
    return guarded(lambda: run(argv))


if __name__ == "__main__":
    sys.exit(main())
