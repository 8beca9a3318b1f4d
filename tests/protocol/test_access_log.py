"""One access line per request, whatever answers it (CalDAV, the API and its
refusals, feeds, health, redirects, files, paths that exist nowhere), with the
method, the route's template, the status and the duration, and nothing
personal: no usager name typed in a search, sent in a body or chosen as an
href, no email, no feed token.  Read from the log of a real server on SQLite
and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, PLAIN_CALENDAR, Server

API = "/api/v1"
NAME = "Gwendolyne"
EMAIL = "gwendolyne.quesnel@example.org"
HREF = "rdv-gwendolyne-quesnel.ics"
TOKEN = "Zq8-feed-token-never-logged"
LINE = re.compile(r"calserver\.access: (\S+) (.+) (\d{3}) \d+\.\dms$")


@pytest.fixture(scope="module")
def admin(module_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=module_server.url, auth=("admin", ADMIN_PASSWORD)) as client:
        yield client


def _access_lines(server: Server, since: int) -> list[tuple[str, str, int]]:
    found = []
    for line in server.log()[since:].splitlines():
        if "calserver.access:" in line:
            match = LINE.search(line)
            assert match, line
            found.append((match[1], match[2], int(match[3])))
    return found


def test_every_request_logs_one_line_without_personal_data(
    module_server: Server, admin: httpx.Client
) -> None:
    org = admin.get(API + "/me").json()["organisations"][0]["id"]
    usagers = f"{API}/organisations/{org}/usagers"
    anonymous = httpx.Client(base_url=module_server.url)
    since = len(module_server.log())
    calls = [
        (lambda: anonymous.get("/healthz"), ("GET", "/healthz", 200)),
        (lambda: anonymous.get("/.well-known/caldav"), ("GET", "/.well-known/caldav", 301)),
        (lambda: anonymous.request("PROPFIND", "/dav/"), ("PROPFIND", "/dav/{tail}", 401)),
        (lambda: admin.request("PROPFIND", "/dav/admin/", headers={"Depth": "1"}),
         ("PROPFIND", "/dav/{tail}", 207)),
        (lambda: admin.put(f"/dav/{PLAIN_CALENDAR}{HREF}", content=_event(),
                           headers={"Content-Type": "text/calendar"}),
         ("PUT", "/dav/{tail}", 201)),
        (lambda: anonymous.get(f"/feeds/{TOKEN}.ics"), ("GET", "/feeds/{token}.ics", 404)),
        (lambda: anonymous.get(f"/nowhere/{NAME}"), ("GET", "(no route)", 404)),
        (lambda: anonymous.post("/healthz"), ("POST", "(no route)", 405)),
        (lambda: admin.get(API + "/me"), ("GET", "/api/v1/me", 200)),
        (lambda: anonymous.get(API + "/me"), ("GET", "/api/v1/me", 401)),
        (lambda: admin.post(usagers, json={"first_name": NAME, "last_name": "Quesnel",
                                           "email": EMAIL}),
         ("POST", "/api/v1/organisations/{org}/usagers", 201)),
        (lambda: admin.get(usagers, params={"q": NAME}),
         ("GET", "/api/v1/organisations/{org}/usagers", 200)),
        (lambda: admin.post(usagers, content=NAME, headers={"Content-Type": "text/plain"}),
         ("POST", "/api/v1/organisations/{org}/usagers", 415)),
        (lambda: admin.get(f"{API}/organisations/{org}/rdvs.csv",
                           params={"from": "2030-01-01", "to": "2030-01-31"}),
         ("GET", "/api/v1/organisations/{org}/rdvs.csv", 200)),
        (lambda: admin.get(f"{API}/{EMAIL}"), ("GET", "(no route)", 404)),
        (lambda: admin.put(API + "/me", json={}), ("PUT", "(no route)", 405)),
    ]  # fmt: skip
    try:
        for call, (_, _, status) in calls:
            assert call().status_code == status
    finally:
        anonymous.close()
    lines = _access_lines(module_server, since)
    assert lines == [expected for _, expected in calls]
    log = module_server.log()[since:]
    for personal in (NAME, "Quesnel", EMAIL, HREF, TOKEN):
        assert personal.lower() not in log.lower(), personal


def _event() -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//FR\r\nBEGIN:VEVENT\r\n"
        "UID:access-log-1\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20300101T100000Z\r\n"
        "DURATION:PT30M\r\nSUMMARY:Entretien\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
