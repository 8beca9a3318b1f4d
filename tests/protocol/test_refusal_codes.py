"""Every refusal code of the booking engine, provoked over real HTTP: over CalDAV
(403, a precondition element in ``urn:calserver:booking`` and a readable
``DAV:responsedescription``) and over the JSON API (the code, 409 for a taken
slot, 422 otherwise), and each time the agenda read back: a refused write
stores nothing and leaves what was there intact.

One server per database for the module: each case works on its own day.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, Server
from tests.dates import at, monday, weekday_holiday, working_days
from tests.ics import event

API = "/api/v1"
BOOKING_NS = "urn:calserver:booking"
ALICE = ("alice", "alice-password")
ICS = {"Content-Type": "text/calendar"}
NO_SUCH_ID = 999_999
USAGER = "X-CALSERVER-USAGER"
ELEVEN_YEARS = timedelta(days=11 * 366)
AGENDAS = ("rdv", "plages", "indisponibilites", "perso")

# Codes no HTTP path can reach today, and why; tests/booking/test_rules.py
# provokes each on plain data.
UNIT_ONLY = {
    # Both paths write an RDV into one agent's agenda: it always has that agent.
    "agent-required": "an RDV written into an agenda always has that agenda's agent",
    # CalDAV and API writers are agents; usagers and prescripteurs (the only
    # writers the delays apply to) come with the public page.
    "booking-delay": "only usagers and prescripteurs are held to the delays",
    # A search's time budget (5 s): no search inside the allowed window is slow
    # enough to spend it on purpose; tests/booking/test_bounded_expansion.py
    # passes a spent deadline.
    "search-too-long": "no allowed search is reliably slow enough to exceed its budget",
    # The self-service page asks a usager's change only as a cancellation
    # (excused) or a move, and only of an RDV not yet started.
    "usager-change": "the page writes only a cancellation as excused or a move",
    "rdv-started": "the page offers no change of a started RDV (the rule is unit-tested)",
}
# Codes only a usager's own change meets (writer "usager": the self-service
# page), each refused over HTTP by the test named here.
OVER_PAGES = {
    "too-late-to-change": "test_selfservice.py::test_the_four_hour_limit",
    "rdv-cancelled": "test_selfservice.py::test_cancel_is_excused_in_caldav_and_told_by_email_only",
    "not-cancellable": "test_selfservice.py::test_a_motif_without_online_moves_offers_none",
    "not-movable": "test_selfservice.py::test_a_motif_without_online_moves_offers_none",
}


@dataclass
class Office:
    server: Server
    org: int
    alice: int
    lieu: int
    motif: int
    days: list[date]
    holiday: date
    # Long-lived clients: a bare httpx call builds an SSL context (~0.1 s).
    dav: httpx.Client
    api: httpx.Client

    def url(self, path: str) -> str:
        return self.server.dav + f"alice/{path}"

    def rdv_extra(self, lieu: int | None = None) -> str:
        return f"X-CALSERVER-MOTIF:{self.motif}\r\nX-CALSERVER-LIEU:{lieu or self.lieu}"


def _ok(answer: httpx.Response, status: int = 200) -> dict:
    assert answer.status_code == status, answer.text
    return answer.json()


@pytest.fixture(scope="module")
def office(module_server: Server) -> Iterator[Office]:
    """alice (PMI), a lieu, a 30-minute motif at that lieu that only agents
    book, a weekday plage 09:00-12:00 from two weeks ahead, and an ordinary
    calendar ``perso`` whose opaque events block booking."""
    server = module_server
    with httpx.Client(base_url=server.url + API, auth=("admin", ADMIN_PASSWORD)) as admin:
        org = _ok(admin.get("/me"))["organisations"][0]["id"]
        new = {"login": "alice", "services": ["PMI"], "password": ALICE[1]}
        alice = _ok(admin.post(f"/organisations/{org}/agents", json=new), 201)["id"]
        service = _ok(admin.get(f"/organisations/{org}/services"))[0]["id"]
        lieu = {"name": "Mairie annexe", "address": "1 place de la Mairie, 75011 Paris"}
        lieu_id = _ok(admin.post(f"/organisations/{org}/lieux", json=lieu), 201)["id"]
        motif = {"name": "Consultation", "service_id": service}
        motif_id = _ok(admin.post(f"/organisations/{org}/motifs", json=motif), 201)["id"]
    first = monday(2)
    plage = {
        "motif_ids": [motif_id],
        "lieu_id": lieu_id,
        "first_day": first.isoformat(),
        "start_time": "09:00",
        "end_time": "12:00",
        "recurrence": {"frequency": "weekly", "weekdays": ["MO", "TU", "WE", "TH", "FR"]},
    }
    with (
        httpx.Client(auth=ALICE, timeout=30) as dav,
        httpx.Client(base_url=server.url + API, auth=ALICE, timeout=30) as api,
    ):
        days = working_days(first, 60)
        office = Office(
            server, org, alice, lieu_id, motif_id, days, weekday_holiday(first), dav, api
        )
        _ok(api.post(f"/agents/{alice}/plages", json=plage), 201)
        assert dav.request("MKCALENDAR", office.url("perso/")).status_code == 201
        yield office


# -- reading the state back ------------------------------------------------------


def _agenda_state(office: Office, agenda: str) -> tuple[str, str, dict[str, str]]:
    """(ctag, sync-token, {href: stored text}) of one of alice's calendars."""
    url = office.url(agenda + "/")
    props = (
        '<propfind xmlns="DAV:" xmlns:CS="http://calendarserver.org/ns/">'
        "<prop><CS:getctag/><sync-token/></prop></propfind>"
    )
    head = office.dav.request("PROPFIND", url, headers={"Depth": "0"}, content=props)
    assert head.status_code == 207, head.text
    root = ET.fromstring(head.content)
    ctag = root.findtext(".//{http://calendarserver.org/ns/}getctag") or ""
    token = root.findtext(".//{DAV:}sync-token") or ""
    listing = office.dav.request(
        "PROPFIND",
        url,
        headers={"Depth": "1"},
        content=b'<propfind xmlns="DAV:"><prop><getetag/></prop></propfind>',
    )
    hrefs = [
        h.text
        for h in ET.fromstring(listing.content).iter("{DAV:}href")
        if h.text and h.text.endswith(".ics")
    ]
    texts = {}
    for href in hrefs:
        item = office.dav.get(office.server.url + href)
        assert item.status_code == 200
        texts[href] = item.text
    assert ctag and token
    return ctag, token, texts


def _state(office: Office) -> dict[str, object]:
    """Everything a refusal must leave as it was: alice's calendars over
    CalDAV, and what the API lists of them and of the motifs."""
    state: dict[str, object] = {agenda: _agenda_state(office, agenda) for agenda in AGENDAS}
    api = office.api
    for listing in ("plages", "indisponibilites"):
        state[f"api {listing}"] = _ok(api.get(f"/agents/{office.alice}/{listing}"))
    state["api rdvs"] = _ok(api.get(f"/agents/{office.alice}/rdvs"))
    state["api motifs"] = _ok(api.get(f"/organisations/{office.org}/motifs"))
    return state


# -- over CalDAV -----------------------------------------------------------------


@dataclass(frozen=True)
class DavCase:
    """A PUT of ``body(office, day)`` to ``alice/<agenda>/<code>.ics`` that the
    engine refuses with ``code``, its description naming ``words``; ``before``
    writes what must already be there (it succeeds)."""

    code: str
    words: str
    body: Callable[[Office, date], str]
    agenda: str = "rdv"
    before: Callable[[Office, date], None] | None = None


def _put(office: Office, path: str, body: str) -> None:
    answer = office.dav.put(office.url(path), content=body.encode(), headers=ICS)
    assert answer.status_code in (201, 204), answer.text


def _rdv(
    uid: str,
    hour: int = 9,
    minutes: int = 30,
    *,
    extra: Callable[[Office], str] | None = None,
    rrule: str | None = None,
) -> Callable[[Office, date], str]:
    """An RDV at ``hour`` on the case's day; by default of the office's motif
    at its lieu (``extra`` gives other X- properties)."""

    def build(office: Office, day: date) -> str:
        properties = extra(office) if extra else office.rdv_extra()
        return event(uid, at(day, hour), minutes, extra=properties, rrule=rrule)

    return build


def _busy_in_perso(office: Office, day: date) -> None:
    _put(office, f"perso/busy-{day}.ics", event(f"busy-{day}", at(day, 9), 60, "Dentiste"))


def _absent(office: Office, day: date) -> None:
    _put(office, f"indisponibilites/away-{day}.ics", event(f"away-{day}", at(day, 9), 60))


def _two_puts(office: Office, day: date) -> None:
    _put(office, "rdv/slot-unavailable-taken.ics", _rdv("taken", hour=9)(office, day))
    _put(office, "rdv/slot-unavailable.ics", _rdv("slot-unavailable", hour=10)(office, day))


DAV_CASES = [
    DavCase("agent-busy", "busy", _rdv("agent-busy"), before=_busy_in_perso),
    DavCase("agent-unavailable", "absent", _rdv("agent-unavailable"), before=_absent),
    DavCase("holiday", "public holiday", _rdv("holiday")),
    DavCase("invalid-event", "cannot repeat", _rdv("invalid-event", rrule="FREQ=DAILY;COUNT=2")),
    DavCase(
        "invalid-plage",
        "within one day",
        _rdv("invalid-plage", minutes=25 * 60),
        agenda="plages",
    ),
    DavCase(
        "invalid-status",
        "unknown status",
        _rdv("invalid-status", extra=lambda o: o.rdv_extra() + "\r\nX-CALSERVER-STATUS:lost"),
    ),
    DavCase("invalid-time", "end after it starts", _rdv("invalid-time", minutes=0)),
    DavCase(
        "lieu-required",
        "takes place at a lieu",
        _rdv("lieu-required", extra=lambda o: f"X-CALSERVER-MOTIF:{o.motif}"),
    ),
    DavCase("outside-plage", "no plage d'ouverture", _rdv("outside-plage", hour=14)),
    # A move onto a taken slot: the moved RDV stays where it was.
    DavCase(
        "slot-unavailable",
        "already taken",
        _rdv("slot-unavailable", hour=9),
        before=_two_puts,
    ),
    DavCase(
        "unknown-lieu",
        "not an open lieu",
        _rdv("unknown-lieu", extra=lambda o: o.rdv_extra(lieu=NO_SUCH_ID)),
    ),
    DavCase("unknown-motif", "motif", _rdv("unknown-motif", extra=lambda o: "")),
    DavCase(
        "unknown-usager",
        "no usager",
        _rdv(
            "unknown-usager", extra=lambda o: f"{o.rdv_extra()}\r\nX-CALSERVER-USAGER:{NO_SUCH_ID}"
        ),
    ),
    DavCase(
        "unsupported-recurrence",
        "at most once a day",
        _rdv("unsupported-recurrence", minutes=60, rrule="FREQ=MINUTELY"),
        agenda="plages",
    ),
    DavCase(
        "out-of-range",
        "lie between 1970",
        lambda o, d: event(
            "out-of-range", at(d + timedelta(days=11 * 366), 9), extra=o.rdv_extra()
        ),
    ),
    # An RDV stretched off the 5-minute steps: the old version stays.
    DavCase(
        "wrong-duration",
        "multiple of 5 minutes; 32 minutes is not one",
        _rdv("wrong-duration", minutes=32),
        before=lambda o, d: _put(o, "rdv/wrong-duration.ics", _rdv("wrong-duration")(o, d)),
    ),
]


def _day(office: Office, code: str, over: str) -> date:
    """A working day of its own for each case (the holiday case: a holiday)."""
    if code == "holiday":
        return office.holiday
    codes = sorted({c.code for c in DAV_CASES} | {c.code for c in API_CASES})
    return office.days[2 * codes.index(code) + (over == "api")]


@pytest.mark.parametrize("case", DAV_CASES, ids=lambda c: c.code)
def test_caldav_refusal_names_its_rule_and_stores_nothing(office: Office, case: DavCase) -> None:
    day = _day(office, case.code, "caldav")
    if case.before:
        case.before(office, day)
    path = f"{case.agenda}/{case.code}.ics"
    previous = office.dav.get(office.url(path))
    before = _state(office)
    answer = office.dav.put(office.url(path), content=case.body(office, day).encode(), headers=ICS)
    assert answer.status_code == 403, answer.text
    root = ET.fromstring(answer.content)
    assert root.tag == "{DAV:}error"
    assert [child.tag for child in root if child.tag != "{DAV:}responsedescription"] == [
        f"{{{BOOKING_NS}}}{case.code}"
    ]
    description = root.findtext("{DAV:}responsedescription") or ""
    assert case.words in description, description
    assert "Traceback" not in answer.text
    assert _state(office) == before
    after = office.dav.get(office.url(path))
    assert (after.status_code, after.text) == (previous.status_code, previous.text)
    if case.before is None:
        assert after.status_code == 404


# -- over the API ------------------------------------------------------------------


ApiRequest = Callable[[Office, httpx.Client, date], httpx.Response]


@dataclass(frozen=True)
class ApiCase:
    """A request the engine refuses with ``code`` (HTTP ``status``), its
    message naming ``words``; ``before`` sets up what must be there."""

    code: str
    words: str
    request: ApiRequest
    status: int = 422
    before: Callable[[Office, httpx.Client, date], None] | None = None


def _book(
    hour: int = 9, **fields: object
) -> Callable[[Office, httpx.Client, date], httpx.Response]:
    def post(office: Office, api: httpx.Client, day: date) -> httpx.Response:
        rdv = {
            "agent_id": office.alice,
            "motif_id": office.motif,
            "lieu_id": office.lieu,
            "starts_at": at(day, hour).isoformat(),
            **fields,
        }
        return api.post("/rdvs", json={k: v for k, v in rdv.items() if v is not None})

    return post


def _plage(**fields: object) -> ApiRequest:
    def post(office: Office, api: httpx.Client, day: date) -> httpx.Response:
        plage = {
            "motif_ids": [office.motif],
            "lieu_id": office.lieu,
            "first_day": day.isoformat(),
            "start_time": "14:00",
            "end_time": "16:00",
            **fields,
        }
        return api.post(f"/agents/{office.alice}/plages", json=plage)

    return post


def _api_absence(office: Office, api: httpx.Client, day: date) -> None:
    absence = {"starts_at": at(day, 9).isoformat(), "ends_at": at(day, 10).isoformat()}
    _ok(api.post(f"/agents/{office.alice}/indisponibilites", json=absence), 201)


def _bad_motif(office: Office, api: httpx.Client, day: date) -> httpx.Response:
    service = _ok(api.get(f"/organisations/{office.org}/services"))[0]["id"]
    motif = {"name": "Sept minutes", "service_id": service, "duration_minutes": 7}
    with httpx.Client(base_url=api.base_url, auth=("admin", ADMIN_PASSWORD)) as admin:
        return admin.post(f"/organisations/{office.org}/motifs", json=motif)


def _public_search(office: Office, api: httpx.Client, day: date) -> httpx.Response:
    window = {"motif": office.motif, "from": day.isoformat(), "to": day.isoformat()}
    return api.get("/creneaux", params={**window, "public": "true"})


def _two_rdvs(office: Office, api: httpx.Client, day: date) -> None:
    for hour in (9, 10):
        _ok(_book(hour)(office, api, day), 201)


def _move_ten_to_nine(office: Office, api: httpx.Client, day: date) -> httpx.Response:
    listed = _ok(api.get(f"/agents/{office.alice}/rdvs", params={"from": str(day), "to": str(day)}))
    (ten,) = [r for r in listed if "T10:00" in r["starts_at"]]
    return api.patch(
        f"/agents/{office.alice}/rdvs/{ten['id']}", json={"starts_at": at(day, 9).isoformat()}
    )


def _ended_plage(office: Office, api: httpx.Client, day: date) -> httpx.Response:
    weekly = {"frequency": "weekly", "weekdays": ["MO"]}
    return _plage(recurrence=weekly, until=(day - timedelta(days=7)).isoformat())(office, api, day)


def _other_service_motif(office: Office, api: httpx.Client, day: date) -> None:
    with httpx.Client(base_url=api.base_url, auth=("admin", ADMIN_PASSWORD)) as admin:
        path = f"/organisations/{office.org}"
        service = _ok(admin.post(f"{path}/services", json={"name": "Social"}), 201)["id"]
        motif = {"name": "Aide sociale", "service_id": service, "location_type": "phone"}
        _ok(admin.post(f"{path}/motifs", json=motif), 201)


def _other_service_search(office: Office, api: httpx.Client, day: date) -> httpx.Response:
    """alice (PMI) searches the créneaux of a motif of another service."""
    motifs = _ok(api.get(f"/organisations/{office.org}/motifs"))
    (motif,) = [m for m in motifs if m["name"] == "Aide sociale"]
    return api.get("/creneaux", params={"motif": motif["id"], "from": str(day), "to": str(day)})


def _far_search(office: Office, api: httpx.Client, day: date) -> httpx.Response:
    far = (day + timedelta(days=3 * 366)).isoformat()
    return api.get("/creneaux", params={"motif": office.motif, "from": far, "to": far})


# Not expressible through the API, which builds the event itself:
# invalid-event (the API writes one well-formed VEVENT), invalid-plage (a plage
# is a start and end time on one day, and end <= start is refused first as
# invalid-value), invalid-status (the schema's enumeration refuses it first as
# invalid-value), invalid-time (a duration is at least one minute).
API_CASES = [
    ApiCase(
        "agent-busy",
        "busy",
        _book(),
        before=lambda o, api, d: _busy_in_perso(o, d),
    ),
    ApiCase("agent-unavailable", "absent", _book(), before=_api_absence),
    ApiCase("holiday", "public holiday", _book()),
    ApiCase("invalid-motif", "multiple of 5", _bad_motif),
    ApiCase("lieu-required", "takes place at a lieu", _book(lieu_id=None)),
    ApiCase("motif-not-bookable", "online booking", _public_search),
    ApiCase("outside-plage", "no plage d'ouverture", _book(14)),
    ApiCase("slot-unavailable", "already taken", _move_ten_to_nine, 409, before=_two_rdvs),
    ApiCase("unknown-lieu", "no lieu", _plage(lieu_id=NO_SUCH_ID)),
    ApiCase("unknown-motif", "no motif", _plage(motif_ids=[NO_SUCH_ID])),
    ApiCase("unknown-usager", "no usager", _book(usager_ids=[NO_SUCH_ID])),
    ApiCase("search-window", "a year back to two years ahead", _far_search),
    ApiCase("wrong-duration", "multiple of 5 minutes", _book(duration_in_min=32)),
    ApiCase(
        "out-of-scope",
        "a service you are not in",
        _other_service_search,
        403,
        before=_other_service_motif,
    ),
    # Over CalDAV a series that ends before it starts, or has over 10,000
    # occurrences, is refused earlier, as invalid calendar data by Radicale.
    ApiCase("invalid-recurrence", "before its first occurrence", _ended_plage),
]


@pytest.mark.parametrize("case", API_CASES, ids=lambda c: c.code)
def test_api_refusal_names_its_rule_and_stores_nothing(office: Office, case: ApiCase) -> None:
    day = _day(office, case.code, "api")
    if case.before:
        case.before(office, office.api, day)
    before = _state(office)
    answer = case.request(office, office.api, day)
    assert answer.status_code == case.status, answer.text
    error = answer.json()["error"]
    assert error["code"] == case.code
    assert case.words in error["message"], error["message"]
    assert _state(office) == before


# -- every code is covered ------------------------------------------------------------


def _engine_codes() -> set[str]:
    """The codes booking/ raises, read from its source."""
    booking = Path(__file__).resolve().parents[2] / "booking"
    pattern = re.compile(r'BookingRefused\(\s*"([a-z-]+)"')
    return {code for module in booking.glob("*.py") for code in pattern.findall(module.read_text())}


def test_every_engine_code_has_a_protocol_test_or_a_reason() -> None:
    codes = _engine_codes()
    assert len(codes) >= 17, codes
    over_http = {c.code for c in DAV_CASES} | {c.code for c in API_CASES} | set(OVER_PAGES)
    assert not over_http & set(UNIT_ONLY)
    assert codes == over_http | set(UNIT_ONLY), codes ^ (over_http | set(UNIT_ONLY))
