"""Listings that need only etags leave texts in the database; answers stay exact.

The tests share one server per database (``module_server``); each fills a
calendar of its own, so every listing holds that test's items alone."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, Server, new_calendar
from tests.ics import event

AUTH = ("admin", ADMIN_PASSWORD)


@pytest.fixture
def calendar(module_server: Server) -> str:
    """The path of a new, empty calendar of admin's, this test's alone."""
    return "/dav/" + new_calendar(module_server)


@pytest.fixture
def filled(module_server: Server, calendar: str) -> dict[str, httpx.Response]:
    gets = {}
    with httpx.Client(auth=AUTH) as client:
        for n in range(4):
            href = f"{calendar}l{n}.ics"
            body = event(f"l{n}", datetime(2027, 1, 4, 9, 0) + timedelta(days=n))
            put = client.put(
                module_server.url + href,
                content=body.encode(),
                headers={"Content-Type": "text/calendar"},
            )
            assert put.status_code == 201, put.text
            gets[href] = client.get(module_server.url + href)
    return gets


def _props(answer: httpx.Response, tag: str) -> dict[str, str]:
    root = ET.fromstring(answer.content)
    return {
        r.findtext("{DAV:}href"): r.findtext(f".//{tag}")
        for r in root.iter("{DAV:}response")
        if r.find(f".//{tag}") is not None and not r.findtext("{DAV:}href").endswith("/")
    }


def test_propfind_etags_and_lengths_match_get(
    module_server: Server, calendar: str, filled: dict[str, httpx.Response]
) -> None:
    for props in ("<getetag/>", "<getetag/><getcontentlength/>"):
        answer = httpx.request(
            "PROPFIND",
            module_server.url + calendar,
            auth=AUTH,
            headers={"Depth": "1"},
            content=f'<propfind xmlns="DAV:"><prop>{props}</prop></propfind>',
        )
        assert answer.status_code == 207
        etags = _props(answer, "{DAV:}getetag")
        assert etags == {href: got.headers["ETag"] for href, got in filled.items()}
        if "getcontentlength" in props:
            lengths = _props(answer, "{DAV:}getcontentlength")
            assert lengths == {href: str(len(got.content)) for href, got in filled.items()}


def test_sync_then_multiget_returns_the_data(
    module_server: Server, calendar: str, filled: dict[str, httpx.Response]
) -> None:
    sync = httpx.request(
        "REPORT",
        module_server.url + calendar,
        auth=AUTH,
        content='<sync-collection xmlns="DAV:"><sync-token/><sync-level>1</sync-level>'
        "<prop><getetag/></prop></sync-collection>",
    )
    etags = _props(sync, "{DAV:}getetag")
    assert etags == {href: got.headers["ETag"] for href, got in filled.items()}
    hrefs = "".join(f"<D:href>{h}</D:href>" for h in etags)
    multiget = httpx.request(
        "REPORT",
        module_server.url + calendar,
        auth=AUTH,
        headers={"Depth": "1"},
        content='<C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        f"<D:prop><D:getetag/><C:calendar-data/></D:prop>{hrefs}</C:calendar-multiget>",
    )
    data = _props(multiget, "{urn:ietf:params:xml:ns:caldav}calendar-data")
    # XML parsers turn CRLF into LF: compare the texts line by line.
    assert {h: d.splitlines() for h, d in data.items()} == {
        href: got.text.splitlines() for href, got in filled.items()
    }


def test_whole_calendar_get_is_encoded_text(
    module_server: Server, calendar: str, filled: dict[str, httpx.Response]
) -> None:
    dashed = event("dash", datetime(2027, 2, 1, 9, 0), summary="Zoé – été")
    with httpx.Client(auth=AUTH) as client:
        put = client.put(
            module_server.url + calendar + "dash.ics",
            content=dashed.encode(),
            headers={"Content-Type": "text/calendar"},
        )
        assert put.status_code == 201
        whole = client.get(module_server.url + calendar)
    assert whole.status_code == 200
    assert whole.headers["Content-Type"] == "text/calendar; charset=utf-8"
    text = whole.content.decode("utf-8")
    assert "SUMMARY:Zoé – été\r\n" in text
    assert text.count("BEGIN:VEVENT") == len(filled) + 1
    assert text.count("BEGIN:VTIMEZONE") == 1


@pytest.mark.parametrize("encoding", ["gzip", "identity"])
def test_large_answers_are_sent_in_pieces_whole_and_compressed_or_not(
    module_server: Server, calendar: str, filled: dict[str, httpx.Response], encoding: str
) -> None:
    """PROPFIND, first sync, expand and whole-calendar GET come chunked (no
    Content-Length), gzip-compressed when asked, and decode to the full answer."""
    expand = (
        '<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop>'
        '<D:getetag/><C:calendar-data><C:expand start="20270101T000000Z" end="20270201T000000Z"/>'
        '</C:calendar-data></D:prop><C:filter><C:comp-filter name="VCALENDAR">'
        '<C:comp-filter name="VEVENT"><C:time-range start="20270101T000000Z" '
        'end="20270201T000000Z"/></C:comp-filter></C:comp-filter></C:filter></C:calendar-query>'
    )
    n = len(filled)
    asked = [  # the collection has its own etag in a PROPFIND
        (
            "PROPFIND",
            '<propfind xmlns="DAV:"><prop><getetag/></prop></propfind>',
            "<getetag>",
            n + 1,
        ),
        (
            "REPORT",
            '<sync-collection xmlns="DAV:"><sync-token/><sync-level>1</sync-level>'
            "<prop><getetag/></prop></sync-collection>",
            "<getetag>",
            n,
        ),
        ("REPORT", expand, "BEGIN:VEVENT", n),
        ("GET", "", "BEGIN:VEVENT", n),
    ]
    with httpx.Client(auth=AUTH, headers={"Accept-Encoding": encoding}) as client:
        for method, body, marker, count in asked:
            answer = client.request(
                method, module_server.url + calendar, content=body, headers={"Depth": "1"}
            )
            assert answer.status_code in (200, 207), answer.text
            assert "Content-Length" not in answer.headers
            assert answer.headers.get("Transfer-Encoding") == "chunked"
            assert answer.headers.get("Content-Encoding", "identity") == encoding
            assert answer.text.count(marker) == count, (method, answer.text)
