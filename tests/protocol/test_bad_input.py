"""Bad input over CalDAV: a clear refusal, and nothing stored."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, Server, new_calendar
from tests.dates import at, monday
from tests.ics import event

AUTH = ("admin", ADMIN_PASSWORD)
CALDAV_NS = "urn:ietf:params:xml:ns:caldav"


@pytest.fixture
def server(module_server: Server) -> Server:
    """One server per database for the module: each test that stores or
    counts items does it in a calendar of its own (``calendar``)."""
    return module_server


@pytest.fixture
def calendar(module_server: Server) -> str:
    return new_calendar(module_server)


def _hrefs(server: Server, calendar: str) -> list[str]:
    answer = httpx.request(
        "PROPFIND",
        server.dav + calendar,
        auth=AUTH,
        headers={"Depth": "1"},
        content=b'<propfind xmlns="DAV:"><prop><getetag/></prop></propfind>',
    )
    assert answer.status_code == 207
    root = ET.fromstring(answer.content)
    return [h.text for h in root.iter("{DAV:}href") if h.text != f"/dav/{calendar}"]


@pytest.mark.parametrize(
    "body",
    [
        "this is not a calendar",
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:x\r\n",  # truncated
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:x\r\n"
        "DTSTART:2027-01-01\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",  # bad date
    ],
)
def test_malformed_icalendar_is_refused_with_precondition(
    server: Server, calendar: str, body: str
) -> None:
    answer = httpx.put(
        server.dav + calendar + "bad.ics",
        auth=AUTH,
        content=body.encode(),
        headers={"Content-Type": "text/calendar"},
    )
    assert answer.status_code == 403
    root = ET.fromstring(answer.content)
    assert root.tag == "{DAV:}error"
    assert root.find(f"{{{CALDAV_NS}}}valid-calendar-data") is not None
    description = root.findtext("{DAV:}responsedescription")
    assert description and "calendar" in description.lower()
    assert "Traceback" not in answer.text
    assert _hrefs(server, calendar) == []


@pytest.mark.parametrize("calendar", ["admin/agenda/", "admin/rdv/"])
@pytest.mark.parametrize(
    ("body", "why"),
    [
        (event("nul", at(monday(), 9), summary="Jeanne\x00Dupont").encode(), "U+0000"),
        (event("bell", at(monday(), 9), summary="ding\x07").encode(), "U+0007"),
        (event("latin", at(monday(), 9), summary="caf\xe9").encode("latin-1"), "UTF-8"),
    ],
)
def test_control_characters_and_invalid_utf8_are_refused_on_every_calendar(
    server: Server, calendar: str, body: bytes, why: str
) -> None:
    answer = httpx.put(
        server.dav + calendar + "x.ics",
        auth=AUTH,
        content=body,
        headers={"Content-Type": "text/calendar; charset=utf-8"},
    )
    assert answer.status_code == 403
    root = ET.fromstring(answer.content)
    assert root.find(f"{{{CALDAV_NS}}}valid-calendar-data") is not None
    assert why in (root.findtext("{DAV:}responsedescription") or "")
    assert _hrefs(server, calendar) == []


@pytest.mark.parametrize("method", ["PUT", "GET", "PROPFIND", "DELETE"])
def test_a_nul_in_a_caldav_path_is_400_and_nothing_stored(
    server: Server, calendar: str, method: str
) -> None:
    """A path the database cannot hold (PostgreSQL refuses NUL in text)."""
    answer = httpx.request(
        method,
        server.dav + calendar + "nul%00name.ics",
        auth=AUTH,
        content=event("nul-path", at(monday(), 9)).encode() if method == "PUT" else None,
        headers={"Content-Type": "text/calendar", "Depth": "0"},
    )
    assert answer.status_code == 400, answer.text
    assert "The path contains a control character (U+0000)" in answer.text
    assert _hrefs(server, calendar) == []
    assert httpx.get(server.url + "/healthz").status_code == 200


def test_unknown_charset_is_415(server: Server, calendar: str) -> None:
    answer = httpx.put(
        server.dav + calendar + "c.ics",
        auth=AUTH,
        content=event("c", at(monday(), 9)).encode(),
        headers={"Content-Type": "text/calendar; charset=no-such-charset"},
    )
    assert answer.status_code == 415
    assert _hrefs(server, calendar) == []


@pytest.mark.parametrize("method", ["PROPFIND", "REPORT", "PROPPATCH", "MKCALENDAR"])
def test_deeply_nested_xml_is_400(server: Server, method: str) -> None:
    deep = b'<propfind xmlns="DAV:">' + b"<a>" * 60_000 + b"</a>" * 60_000 + b"</propfind>"
    target = server.dav + ("admin/deep/" if method == "MKCALENDAR" else "admin/agenda/")
    answer = httpx.request(method, target, auth=AUTH, content=deep, headers={"Depth": "0"})
    assert answer.status_code == 400
    assert "nested deeper than 100 levels" in answer.text
    assert httpx.get(server.url + "/healthz").status_code == 200
    gone = httpx.request("PROPFIND", server.dav + "admin/deep/", auth=AUTH, headers={"Depth": "0"})
    assert gone.status_code == 404


def test_refused_content_never_reaches_the_log(server: Server, calendar: str) -> None:
    # A line without its colon: vobject's error quotes it whole.
    secret = "DESCRIPTION RDV de Jeanne Confidentielle jeanne.confidentielle@example.org"
    body = event("leak", datetime(2027, 1, 4, 9, 0), extra=secret)
    answer = httpx.put(
        server.dav + calendar + "leak.ics",
        auth=AUTH,
        content=body.encode(),
        headers={"Content-Type": "text/calendar"},
    )
    assert answer.status_code == 403
    assert _hrefs(server, calendar) == []
    log = server.log()
    # The refusal is logged with its collection, not the client's href (which may
    # name a person) and not the content.
    assert f"Bad PUT request on '/{calendar}" in log
    assert "leak.ics" not in log
    assert "Confidentielle" not in log and "jeanne" not in log.lower()


def test_oversized_body_gets_413_and_nothing_stored(server: Server, calendar: str) -> None:
    padding = "DESCRIPTION:" + "x" * 70 + "\r\n"
    big = event("big", datetime(2027, 1, 4, 9, 0), extra=padding * 20_000)
    assert len(big) > 1_048_576
    answer = httpx.put(
        server.dav + calendar + "big.ics",
        auth=AUTH,
        content=big.encode(),
        headers={"Content-Type": "text/calendar"},
    )
    assert answer.status_code == 413
    assert _hrefs(server, calendar) == []


def test_xml_entity_expansion_is_refused(server: Server) -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b'<propfind xmlns="DAV:"><prop><displayname>&b;</displayname></prop></propfind>'
    )
    for method in ("PROPFIND", "REPORT", "PROPPATCH"):
        answer = httpx.request(
            method, server.dav + "admin/agenda/", auth=AUTH, content=bomb, headers={"Depth": "0"}
        )
        assert answer.status_code == 400, method
    names = httpx.request(
        "PROPFIND",
        server.dav + "admin/agenda/",
        auth=AUTH,
        headers={"Depth": "0"},
        content=b'<propfind xmlns="DAV:"><prop><displayname/></prop></propfind>',
    )
    assert "aaaaaaaaaa" not in names.text


def test_wrong_password_gets_401_with_challenge(server: Server) -> None:
    answer = httpx.request("PROPFIND", server.dav + "admin/", auth=("admin", "wrong-password"))
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Basic realm=")
    anonymous = httpx.request("PROPFIND", server.dav + "admin/")
    assert anonymous.status_code == 401


def test_eight_concurrent_writers_never_see_database_locked(server: Server, calendar: str) -> None:
    def put(n: int) -> int:
        body = event(f"c{n}", datetime(2027, 2, 1, 8, 0) + timedelta(minutes=30 * n))
        with httpx.Client(auth=AUTH) as client:
            return client.put(
                server.dav + calendar + f"c{n}.ics",
                content=body.encode(),
                headers={"Content-Type": "text/calendar"},
            ).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(put, range(80)))
    assert statuses == [201] * 80
    assert len(_hrefs(server, calendar)) == 80
    assert "locked" not in server.log().lower()


def test_concurrent_writes_of_one_resource_all_get_an_answer(server: Server, calendar: str) -> None:
    """Eight clients PUT the same href at once: one creates it, the others
    replace it; nobody gets a server error."""

    def put(n: int) -> int:
        body = event("same", datetime(2027, 2, 1, 8, 0), summary=f"version {n}")
        with httpx.Client(auth=AUTH) as client:
            return client.put(
                server.dav + calendar + "same.ics",
                content=body.encode(),
                headers={"Content-Type": "text/calendar"},
            ).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(put, range(8)))
    assert statuses == [201] + [204] * 7
    assert _hrefs(server, calendar) == [f"/dav/{calendar}same.ics"]


def test_malformed_time_range_is_not_a_server_error(server: Server) -> None:
    """calserver reads the expand window before Radicale does; a range it cannot
    read must leave the answer to Radicale, not end in a 500."""
    query = (
        '<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        '<D:prop><C:calendar-data><C:expand start="20270301T000000Z" end="20270401T000000Z"/>'
        '</C:calendar-data></D:prop><C:filter><C:comp-filter name="VCALENDAR">'
        '<C:comp-filter name="VEVENT"><C:time-range start="yesterday" end="tomorrow"/>'
        "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"
    )
    answer = httpx.request(
        "REPORT", server.dav + "admin/agenda/", auth=AUTH, content=query, headers={"Depth": "1"}
    )
    assert answer.status_code < 500
