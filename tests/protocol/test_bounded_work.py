"""Bounded work per request, over real HTTP on both databases: series that
repeat within a day, dates far from now and searches far from now answer a
clear refusal at once (nothing stored), or are stored with a capped expansion
(ordinary calendars), and heavy searches leave other clients served."""

from __future__ import annotations

import secrets
import statistics
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from plugins.caldav import MAX_EXPAND_OCCURRENCES
from storage.database import Database
from storage.schema import agenda_events, agenda_occurrences
from tests.conftest import ADMIN_PASSWORD, Server, new_calendar
from tests.dates import at, monday, today
from tests.ics import event
from tests.protocol.load import p95_bound, searching_agent

API = "/api/v1"
BOOKING_NS = "urn:calserver:booking"
# A client that waits this long has met a request that does not stop: before
# these limits each of these requests ran for minutes.
PATIENCE = 20.0


@dataclass
class Office:
    server: Server
    login: str
    agent: int
    motif: int
    lieu: int

    def api(self, login: str = "admin") -> httpx.Client:
        password = ADMIN_PASSWORD if login == "admin" else f"{login}-password"
        return httpx.Client(
            base_url=self.server.url + API, auth=(login, password), timeout=PATIENCE
        )


def _ok(answer: httpx.Response, status: int = 200) -> dict:
    assert answer.status_code == status, answer.text
    return answer.json()


def _office(server: Server) -> Office:
    """An agent of PMI with a lieu and a motif of her own (tests share the module's server)."""
    login = f"alice-{secrets.token_hex(4)}"
    with httpx.Client(base_url=server.url + API, auth=("admin", ADMIN_PASSWORD)) as admin:
        org = _ok(admin.get("/me"))["organisations"][0]["id"]
        new = {"login": login, "services": ["PMI"], "password": f"{login}-password"}
        agent = _ok(admin.post(f"/organisations/{org}/agents", json=new), 201)["id"]
        pmi = next(
            s for s in _ok(admin.get(f"/organisations/{org}/services")) if s["name"] == "PMI"
        )
        lieu = _ok(
            admin.post(
                f"/organisations/{org}/lieux",
                json={"name": f"Mairie {login}", "address": "1 place de la Mairie, 75011 Paris"},
            ),
            201,
        )["id"]
        motif = {
            "name": f"Consultation {login}",
            "service_id": pmi["id"],
            "bookable_by": "everyone",
            "duration_minutes": 30,
        }
        motif_id = _ok(admin.post(f"/organisations/{org}/motifs", json=motif), 201)["id"]
    return Office(server, login, agent, motif_id, lieu)


def _open(office: Office, start: str, end: str, weekdays: list[str]) -> None:
    """Give alice a weekly plage from next Monday."""
    plage = {
        "motif_ids": [office.motif],
        "lieu_id": office.lieu,
        "first_day": monday(1).isoformat(),
        "start_time": start,
        "end_time": end,
        "recurrence": {"frequency": "weekly", "weekdays": weekdays},
    }
    with office.api() as admin:
        _ok(admin.post(f"/agents/{office.agent}/plages", json=plage), 201)


@pytest.fixture
def calendar(module_server: Server) -> str:
    """A new ordinary calendar of admin's, as ``admin/<name>`` (no final slash)."""
    return new_calendar(module_server).rstrip("/")


@pytest.fixture
def office(module_server: Server) -> Iterator[Office]:
    """An agent of her own (PMI), a lieu, a 30-minute motif, and a weekday
    plage 09:00-12:00 from next Monday, on the module's server."""
    found = _office(module_server)
    _open(found, "09:00", "12:00", ["MO", "TU", "WE", "TH", "FR"])
    yield found


def _put(server: Server, path: str, text: str, login: str = "admin") -> httpx.Response:
    password = ADMIN_PASSWORD if login == "admin" else f"{login}-password"
    return httpx.put(
        server.dav + path,
        auth=(login, password),
        content=text.encode(),
        headers={"Content-Type": "text/calendar"},
        timeout=PATIENCE,
    )


def _precondition(answer: httpx.Response) -> str:
    assert answer.status_code == 403, answer.text
    root = ET.fromstring(answer.content)
    found = [child.tag for child in root if child.tag.startswith("{")]
    assert root.findtext("{DAV:}responsedescription"), answer.text
    return next(t.split("}")[1] for t in found if t.startswith(f"{{{BOOKING_NS}}}"))


def _exists(server: Server, path: str) -> bool:
    answer = httpx.get(server.dav + path, auth=("admin", ADMIN_PASSWORD), timeout=PATIENCE)
    return answer.status_code == 200


@pytest.mark.parametrize("agenda", ["plages", "indisponibilites", "rdv"])
@pytest.mark.parametrize("frequency", ["SECONDLY", "MINUTELY"])
def test_a_sub_daily_series_is_refused_at_once_in_booking_agendas(
    office: Office, agenda: str, frequency: str
) -> None:
    extra = f"X-CALSERVER-MOTIF:{office.motif}\r\nX-CALSERVER-LIEU:{office.lieu}"
    text = event("dense", at(monday(1), 9), rrule=f"FREQ={frequency}", extra=extra)
    path = f"{office.login}/{agenda}/dense.ics"
    assert _precondition(_put(office.server, path, text)) == "unsupported-recurrence"
    assert not _exists(office.server, path)


@pytest.mark.parametrize("agenda", ["ordinary", "plages"])
def test_a_rule_that_never_occurs_is_refused_at_once(
    office: Office, calendar: str, agenda: str
) -> None:
    """Stock Radicale searches such a rule's first occurrence until the year
    9999 (minutes of CPU per PUT); the answer here comes before the client's
    patience runs out, and says why."""
    if agenda == "plages":
        calendar = f"{office.login}/plages"
    extra = f"X-CALSERVER-MOTIF:{office.motif}\r\nX-CALSERVER-LIEU:{office.lieu}"
    rule = "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"
    text = event("never", at(monday(1), 9), rrule=rule, extra=extra)
    answer = _put(office.server, f"{calendar}/never.ics", text)
    assert answer.status_code == 403, answer.text
    root = ET.fromstring(answer.content)
    assert root.find("{urn:ietf:params:xml:ns:caldav}valid-calendar-data") is not None
    assert "never produces an occurrence" in (root.findtext("{DAV:}responsedescription") or "")
    assert not _exists(office.server, f"{calendar}/never.ics")


def _report(server: Server, calendar: str, start: str, end: str) -> httpx.Response:
    body = (
        '<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        '<D:prop><D:getetag/></D:prop><C:filter><C:comp-filter name="VCALENDAR">'
        f'<C:comp-filter name="VEVENT"><C:time-range start="{start}" end="{end}"/>'
        "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"
    )
    return httpx.request(
        "REPORT",
        f"{server.dav}{calendar}/",
        auth=("admin", ADMIN_PASSWORD),
        headers={"Depth": "1", "Content-Type": "application/xml"},
        content=body.encode(),
        timeout=PATIENCE,
    )


# Whole days from the start past its reach (2.8 hours of seconds, 6.9 days of minutes).
@pytest.mark.parametrize(("frequency", "reach"), [("SECONDLY", 1), ("MINUTELY", 8)])
def test_a_sub_daily_event_in_an_ordinary_calendar_is_stored_capped(
    module_server: Server, calendar: str, frequency: str, reach: int
) -> None:
    """Stored as written, indexed no further than its reach (10,000
    instances: under 3 hours of seconds, under 7 days of minutes)."""
    server, uid = module_server, f"dense-{calendar[-8:]}"
    start = at(monday(1), 9)
    path = f"{calendar}/dense.ics"
    answer = _put(server, path, event(uid, start, rrule=f"FREQ={frequency}"))
    assert answer.status_code == 201, answer.text
    assert _exists(server, path)
    database = Database(server.database_url)
    try:
        with database.connection() as conn:
            item = conn.execute(
                select(agenda_events.c.item_id).where(agenda_events.c.uid == uid)
            ).scalar_one()
            stored = conn.execute(
                select(func.count()).where(agenda_occurrences.c.item_id == item)
            ).scalar_one()
    finally:
        database.dispose()
    assert 0 < stored <= 2000
    # Europe/Paris is UTC+1 or +2: 09:00 local is 07:00 or 08:00 UTC.
    day = f"{start:%Y%m%d}"
    hit = _report(server, calendar, f"{day}T080000Z", f"{day}T080100Z")
    assert hit.status_code == 207 and "dense.ics" in hit.text
    # Past the series' reach, and a year later.
    for later in (start + timedelta(days=reach), start + timedelta(days=365)):
        far = _report(
            server,
            calendar,
            f"{later:%Y%m%d}T000000Z",
            f"{later + timedelta(days=30):%Y%m%d}T000000Z",
        )
        assert far.status_code == 207 and "dense.ics" not in far.text


def test_an_expanding_report_of_a_dense_series_is_bounded(
    module_server: Server, calendar: str
) -> None:
    """One day of a SECONDLY series asked with <C:expand>: at most
    MAX_EXPAND_OCCURRENCES instances, else a refusal, and soon either way."""
    server, start = module_server, at(monday(1), 9)
    stored = _put(server, f"{calendar}/dense.ics", event("dense", start, rrule="FREQ=SECONDLY"))
    assert stored.status_code == 201, stored.text
    day, after = f"{start:%Y%m%d}", f"{start + timedelta(days=1):%Y%m%d}"
    body = (
        '<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        f'<D:prop><C:calendar-data><C:expand start="{day}T000000Z" end="{after}T000000Z"/>'
        '</C:calendar-data></D:prop><C:filter><C:comp-filter name="VCALENDAR">'
        f'<C:comp-filter name="VEVENT"><C:time-range start="{day}T000000Z" '
        f'end="{after}T000000Z"/></C:comp-filter></C:comp-filter></C:filter>'
        "</C:calendar-query>"
    )
    answer = httpx.request(
        "REPORT",
        f"{server.dav}{calendar}/",
        auth=("admin", ADMIN_PASSWORD),
        headers={"Depth": "1", "Content-Type": "application/xml"},
        content=body.encode(),
        timeout=PATIENCE,
    )
    if answer.status_code == 207:
        assert answer.text.count("BEGIN:VEVENT") <= MAX_EXPAND_OCCURRENCES
    else:
        assert answer.status_code == 400, answer.text


def test_creneaux_far_from_now_answer_422(office: Office) -> None:
    with office.api(office.login) as alice:
        for params in (
            {"motif": office.motif, "from": "8999-01-01", "to": "8999-04-03"},  # 93 days
            {"motif": office.motif, "from": f"{today().year - 3}-01-01",
             "to": f"{today().year - 3}-02-01"},
        ):  # fmt: skip
            answer = alice.get("/creneaux", params=params)
            assert answer.status_code == 422, answer.text
            assert answer.json()["error"]["code"] == "search-window"
        answer = alice.get("/creneaux/next", params={"motif": office.motif, "from": "8999-01-01"})
        assert answer.status_code == 422 and answer.json()["error"]["code"] == "search-window"
        # Within the window the same searches work.
        near = alice.get("/creneaux/next", params={"motif": office.motif})
        assert _ok(near)["creneau"] is not None


def _rdv_text(office: Office, uid: str, stamp: str) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{stamp}T090000Z\r\n"
        f"DTEND:{stamp}T093000Z\r\nSUMMARY:RDV\r\nX-CALSERVER-MOTIF:{office.motif}\r\n"
        f"X-CALSERVER-LIEU:{office.lieu}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def test_an_rdv_in_year_0001_or_9999_is_refused(office: Office) -> None:
    for uid, stamp in (("ancient", "00010101"), ("far", "99991230")):
        path = f"{office.login}/rdv/{uid}.ics"
        answer = _put(office.server, path, _rdv_text(office, uid, stamp))
        assert _precondition(answer) in ("out-of-range", "invalid-event")
        assert not _exists(office.server, path)
    with office.api() as admin:
        for starts_at in ("0001-01-01T09:00:00", "8999-12-30T09:00:00", "9999-12-31T23:45:00"):
            rdv = {
                "agent_id": office.agent,
                "motif_id": office.motif,
                "lieu_id": office.lieu,
                "starts_at": starts_at,
            }
            answer = admin.post("/rdvs", json=rdv)
            assert answer.status_code == 422, answer.text
        # Nothing stored; and the listing works without dates.
        assert _ok(admin.get(f"/agents/{office.agent}/rdvs")) == []


def test_plages_and_absences_out_of_range_are_refused(office: Office) -> None:
    first = monday(1)
    plage = {
        "motif_ids": [office.motif],
        "lieu_id": office.lieu,
        "first_day": first.isoformat(),
        "start_time": "14:00",
        "end_time": "16:00",
        "recurrence": {"frequency": "weekly", "weekdays": ["MO"]},
    }
    absence = {
        "starts_at": f"{first}T13:00:00",
        "ends_at": f"{first}T14:00:00",
        "recurrence": {"frequency": "weekly", "weekdays": ["MO"]},
    }
    cases = [
        ("plages", {**plage, "until": (first - timedelta(days=7)).isoformat()},
         "invalid-recurrence"),
        ("plages", {**plage, "first_day": "9999-12-31", "recurrence": None}, "out-of-range"),
        ("plages", {**plage, "first_day": "9999-12-31"}, "out-of-range"),
        ("indisponibilites", {**absence, "until": "8999-12-31"}, "out-of-range"),
    ]  # fmt: skip
    with office.api() as admin:
        for agenda, body, code in cases:
            answer = admin.post(f"/agents/{office.agent}/{agenda}", json=body)
            assert answer.status_code == 422, (agenda, body, answer.text)
            assert answer.json()["error"]["code"] == code
        assert len(_ok(admin.get(f"/agents/{office.agent}/plages"))) == 1  # the fixture's
        assert _ok(admin.get(f"/agents/{office.agent}/indisponibilites")) == []
    # Over CalDAV, the same absence is refused too (nothing stored).
    text = event("long", at(first, 13), rrule="FREQ=WEEKLY;UNTIL=89991231T000000Z")
    path = f"{office.login}/indisponibilites/long.ics"
    answer = _put(office.server, path, text)
    assert answer.status_code == 403, answer.text
    assert "Too many recurrence rule entries" in answer.text
    assert not _exists(office.server, path)


def test_rdvs_are_listed_without_dates(office: Office) -> None:
    with office.api() as admin:
        slot = _ok(admin.get("/creneaux/next", params={"motif": office.motif}))["creneau"]
        rdv = {
            "agent_id": office.agent,
            "motif_id": office.motif,
            "lieu_id": office.lieu,
            "starts_at": slot["starts_at"],
        }
        booked = _ok(admin.post("/rdvs", json=rdv), 201)
        listed = _ok(admin.get(f"/agents/{office.agent}/rdvs"))
    assert [r["id"] for r in listed] == [booked["id"]]


@pytest.mark.slow
def test_heavy_searches_leave_other_clients_served(server: Server) -> None:
    """Four clients search créneaux as heavily as allowed (93 days of a
    5-minute motif in a plage open 08:00-20:00 every day, over and over) while
    a fifth reads an agenda and the feed: the fifth's 95th percentile stays
    under the bound the auth flood's tests state (docs/hardening.md)."""
    carol = searching_agent(server, f"carol-{secrets.token_hex(3)}")
    admin_auth = ("admin", ADMIN_PASSWORD)
    with httpx.Client(base_url=server.url + API, auth=admin_auth, timeout=PATIENCE) as admin:
        feed = _ok(admin.get(f"/agents/{carol.agent}/feed"))["https"]
    stop = threading.Event()
    heavy_done: list[int] = []

    def heavy(params: dict) -> None:
        auth = (carol.login, carol.password)
        with httpx.Client(base_url=server.url + API, auth=auth, timeout=PATIENCE) as searcher:
            while not stop.is_set():
                heavy_done.append(searcher.get("/creneaux", params=params).status_code)

    workers = [threading.Thread(target=heavy, args=(carol.searches[i % 2],)) for i in range(4)]
    for worker in workers:
        worker.start()
    latencies: list[float] = []
    try:
        time.sleep(1.0)
        with (
            httpx.Client(base_url=server.url + API, auth=admin_auth, timeout=PATIENCE) as admin,
            httpx.Client(timeout=PATIENCE) as anonymous,
        ):
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                began = time.perf_counter()
                _ok(admin.get(f"/agents/{carol.agent}/plages"))
                latencies.append(time.perf_counter() - began)
                began = time.perf_counter()
                assert anonymous.get(feed).status_code == 200
                latencies.append(time.perf_counter() - began)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    p95 = statistics.quantiles(latencies, n=20)[-1]
    print(f"normal client: {len(latencies)} requests, p95 {p95 * 1000:.0f} ms; "
          f"heavy searches: {len(heavy_done)} ({set(heavy_done)})")  # fmt: skip
    assert heavy_done and set(heavy_done) <= {200, 503}
    assert p95 < p95_bound(server, searches=True)
