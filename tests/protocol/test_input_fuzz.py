"""Fuzzing over real sockets: iCalendar bodies PUT to an ordinary calendar and
to an agenda, JSON bodies to every API operation that takes one.  Whatever
arrives, the answer is not a 5xx and the server stays healthy.

The fast suite runs a few examples per case; the slow suite many more.
Dates stay within a few years of today: extreme dates are the booking
bounds' tests, this file is about encodings and shapes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calserver.api.openapi import OPERATIONS
from m365.secrets import new_key
from tests.conftest import ADMIN_PASSWORD, Server, start_server
from tests.dates import at, monday, today
from tests.ics import event

API = "/api/v1"
JSON = "application/json"
FAST, SLOW = 15, 120
COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    "database": None,
}

# Text as it comes: any code point but lone surrogates (which JSON encoders
# and HTTP clients refuse), control characters included.
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)
NEAR_DAY = st.integers(-400, 800).map(lambda n: (today() + timedelta(days=n)).isoformat())
ODD_STRING = st.sampled_from(
    ["", " ", "null", "2030-02-30", "24:00", "09:60", "T", "\x00", "é" * 300, "1e309", "MO"]
)
IDS = st.sampled_from([1, 2, 3, 0, -1, 2**31, 2**63, 10**30])
SCALAR = st.one_of(
    TEXT, NEAR_DAY, ODD_STRING, IDS, st.integers(), st.floats(), st.booleans(), st.none()
)
JSON_VALUE = st.recursive(
    SCALAR,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=8,
)

BODY_OPERATIONS = [(op.method, op.path, op.body) for op in OPERATIONS if op.body]


def _valid_bodies(agent: int) -> dict[str, dict]:
    """A body each operation accepts, for the fuzz to change a field or two of
    (so that odd values reach the handlers and the database, not only the decoder)."""
    day = monday().isoformat()
    return {
        "ServiceIn": {"name": "Service"},
        "AgentIn": {"login": "fuzz", "password": "fuzz-password"},
        "LieuIn": {"name": "Lieu", "address": "1 rue de la Paix, 75002 Paris"},
        "MotifIn": {"name": "Motif", "service_id": 1},
        "UsagerIn": {"first_name": "Camille", "last_name": "Durand"},
        "PlageIn": {"motif_ids": [1], "first_day": day, "start_time": "09:00", "end_time": "12:00"},
        "AbsenceIn": {"starts_at": f"{day}T09:00", "ends_at": f"{day}T10:00"},
        "RdvIn": {"agent_id": agent, "motif_id": 1, "starts_at": f"{day}T09:00"},
    }


def _body(kind: type, valid: dict) -> st.SearchStrategy[bytes]:
    fields = list(kind.__struct_fields__)
    keys = st.sampled_from(fields) | TEXT
    changed = st.dictionaries(st.sampled_from(fields), TEXT | SCALAR, max_size=2).map(
        lambda change: {**valid, **change}
    )
    anything = st.dictionaries(keys, JSON_VALUE, max_size=len(fields) + 1) | JSON_VALUE
    as_json = st.tuples(changed | anything, st.booleans()).map(
        lambda pair: json.dumps(pair[0], ensure_ascii=pair[1]).encode()
    )
    return st.one_of(as_json, st.binary(max_size=300))


def _ical_line() -> st.SearchStrategy[str]:
    name = st.sampled_from(
        ["SUMMARY", "DTSTART", "DTEND", "DURATION", "RRULE", "UID", "X-CALSERVER-MOTIF", "TZID"]
    )
    return st.tuples(name, TEXT).map(lambda pair: f"{pair[0]}:{pair[1]}")


def _ical_body() -> st.SearchStrategy[bytes]:
    start = at(monday(), 9)
    template = event("fuzz", start)
    with_lines = st.lists(_ical_line(), max_size=4).map(
        lambda lines: template.replace("SUMMARY:RDV", "\r\n".join(["SUMMARY:RDV", *lines]))
    )
    summary = TEXT.map(lambda text: event("fuzz", start, summary=text))
    mutated = st.tuples(st.integers(0, len(template)), st.binary(min_size=1, max_size=8)).map(
        lambda cut: template.encode()[: cut[0]] + cut[1] + template.encode()[cut[0] :]
    )
    return st.one_of(
        with_lines.map(str.encode), summary.map(str.encode), mutated, st.binary(max_size=400)
    )


@pytest.fixture(scope="module")
def server(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server per database for the module: the fuzz asserts answers and
    health, never stored state, so what earlier examples wrote only widens it.
    With a Microsoft 365 key (and no push worker), so that the connection
    operations are fuzzed past their "not configured" answer."""
    config = f"[m365]\nkey = {new_key()}\nworker = false\n"
    srv = start_server(module_database_url, tmp_path_factory.mktemp("server"), extra_config=config)
    yield srv
    srv.stop()


def _healthy(client: httpx.Client, server: Server, answer: httpx.Response, what: object) -> None:
    assert answer.status_code < 500, (what, answer.status_code, answer.text[:300])
    assert client.get(server.url + "/healthz", timeout=10).status_code == 200


def _fuzz_icalendar(server: Server, calendar: str, examples: int) -> None:
    auth = ("admin", ADMIN_PASSWORD)
    with httpx.Client(auth=auth, timeout=30) as client:

        @settings(max_examples=examples, **COMMON)
        @given(body=_ical_body())
        def put(body: bytes) -> None:
            answer = client.put(
                server.dav + calendar + "fuzz.ics",
                content=body,
                headers={"Content-Type": "text/calendar"},
            )
            _healthy(client, server, answer, body)

        put()


def _fuzz_json(server: Server, examples: int) -> None:
    with httpx.Client(
        base_url=server.url + API, auth=("admin", ADMIN_PASSWORD), timeout=30
    ) as client:
        me = client.get("/me").json()
        ids = {"org": me["organisations"][0]["id"], "agent": me["id"], "id": 1, "uid": "fuzz"}
        valid = _valid_bodies(me["id"])

        @settings(max_examples=examples, **COMMON)
        @given(data=st.data())
        def send(data: st.DataObject) -> None:
            method, path, kind = data.draw(st.sampled_from(BODY_OPERATIONS))
            body = data.draw(_body(kind, valid.get(kind.__name__, {})))
            answer = client.request(
                method, path.format(**ids), content=body, headers={"Content-Type": JSON}
            )
            _healthy(client, server, answer, (method, path, body))

        send()


@pytest.mark.parametrize("calendar", ["admin/agenda/", "admin/rdv/"])
def test_icalendar_bodies_never_answer_5xx(server: Server, calendar: str) -> None:
    _fuzz_icalendar(server, calendar, FAST)


def test_json_bodies_never_answer_5xx(server: Server) -> None:
    _fuzz_json(server, FAST * 3)


@pytest.mark.slow
@pytest.mark.parametrize("calendar", ["admin/agenda/", "admin/rdv/"])
def test_many_icalendar_bodies_never_answer_5xx(server: Server, calendar: str) -> None:
    _fuzz_icalendar(server, calendar, SLOW)


@pytest.mark.slow
def test_many_json_bodies_never_answer_5xx(server: Server) -> None:
    _fuzz_json(server, SLOW)
