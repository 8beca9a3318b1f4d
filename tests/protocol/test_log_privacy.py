"""A full cycle against a server logging at debug level (API, CalDAV, feed,
failed logins, malformed and oversized input), then the whole log is read:
no password, credential, feed token, usager datum or event text in it, and
one access line per request with the route's template."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests import dates
from tests.conftest import ADMIN_PASSWORD, Server, start_server
from tests.protocol.office import ALICE, Office, ok

USAGER = {
    "first_name": "Gwendolyne",
    "last_name": "Vasquez-Oyelaran",
    "email": "gwendolyne.oyelaran@example.org",
    "phone": "+33698765432",
    "address": "7 impasse des Glycines, code 93B71, 75011 Paris",
    "postcode": "75011",
    "city": "Paris",
    "notes": "Allergie-pénicilline-Zorblax",
}
EVENT_TEXT = ("Rendez-vous-Thessaly-Quimperlé", "Dossier-confidentiel-Xylophage")
TZID = "Mars/Olympus_Mons-Krypton"
BAD_JSON_TEXT = "Paysage-Hyacinthe-Mordred"
PASSWORD_AS_LOGIN = "Tr0ub4dor-typed-as-login"
NAMED_HREF = "rdv-honorine-quesnel"
WRONG_PASSWORD = "Faux-mot-de-passe-Plouzané"
HUGE_PASSWORD = "Ultraviolet-" + "x" * 9000


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    srv = start_server(database_url, tmp_path / "server", extra_config="[logging]\nlevel = debug\n")
    yield srv
    srv.stop()


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _basic(login: str, password: str) -> str:
    return base64.b64encode(f"{login}:{password}".encode()).decode()


def test_nothing_personal_or_secret_reaches_the_log(server: Server) -> None:
    office = Office(server)
    try:
        _cycle(server, office)
        token = office.feed_url.rsplit("/", 1)[1].removesuffix(".ics")
    finally:
        office.close()
    log = server.log()
    secrets = [
        ADMIN_PASSWORD,
        _basic("admin", ADMIN_PASSWORD),
        ALICE[1],
        _basic(*ALICE),
        WRONG_PASSWORD,
        _basic("alice", WRONG_PASSWORD),
        PASSWORD_AS_LOGIN,
        NAMED_HREF,
        _basic("alice", HUGE_PASSWORD)[:40],
        HUGE_PASSWORD[:20],
        token,
        TZID,
        BAD_JSON_TEXT,
        "Glycines",
        "93B71",
        *EVENT_TEXT,
        *(v for k, v in USAGER.items() if k not in ("postcode", "city")),
    ]
    found = [s for s in secrets if s in log]
    assert found == [], log
    # Tracebacks quote what they failed on; only the exception's type is kept.
    assert "Traceback" not in log, log
    # The access log: method, route template, status, duration; no raw path.
    assert re.search(r"GET /feeds/\{token\}\.ics 200 \d+(\.\d+)?ms", log), log
    assert re.search(r"POST /api/v1/rdvs 201 ", log), log
    assert re.search(r"PUT /dav/\{tail\} 201 ", log), log
    assert re.search(r"GET /api/v1/me 401 ", log), log


def _cycle(server: Server, office: Office) -> None:
    # API: a usager with distinctive data, booked.
    usager = ok(office.alice.post(f"/organisations/{office.org}/usagers", json=USAGER), 201)
    office.book_with(usager["id"])
    # CalDAV: an event with distinctive text and a time zone of its own.
    start = dates.at(dates.monday(4), 10)
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:log-{EVENT_TEXT[0]}\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART;TZID={TZID}:{start:%Y%m%dT%H%M%S}\r\nDURATION:PT30M\r\n"
        f"SUMMARY:{EVENT_TEXT[0]}\r\nDESCRIPTION:{EVENT_TEXT[1]}\r\n"
        f"ATTENDEE;CN={USAGER['first_name']}:mailto:{USAGER['email']}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    dav = server.dav + "admin/agenda/"
    admin = ("admin", ADMIN_PASSWORD)
    assert httpx.put(dav + "private.ics", content=text, auth=admin).status_code == 201
    # ...the same text refused by the booking rules in alice's rdv agenda,
    # and a malformed one.
    refused = httpx.put(f"{server.dav}alice/rdv/private.ics", content=text, auth=ALICE)
    assert refused.status_code == 403
    broken = text.replace("END:VEVENT", f"DTEND:{EVENT_TEXT[1]}\r\nEND:VEVENT")
    # Its href is the client's choice, and may name a person.
    href = f"{NAMED_HREF}.ics"
    assert httpx.put(dav + href, content=broken, auth=admin).status_code in (400, 403)
    garbage = f"BEGIN:VCALENDAR\r\n{EVENT_TEXT[0]}\r\n"
    assert httpx.put(dav + "garbage.ics", content=garbage, auth=admin).status_code in (400, 403)
    report = (
        '<?xml version="1.0"?><C:calendar-query xmlns:C="urn:ietf:params:xml:ns:caldav" '
        f'xmlns:D="DAV:"><D:prop><D:getetag/></D:prop><C:filter>{EVENT_TEXT[1]}'
        "<C:comp-filter name='VCALENDAR'/></C:filter></C:calendar-query"
    )
    httpx.request("REPORT", dav, content=report, auth=admin, headers={"Depth": "1"})
    assert httpx.get(dav + "private.ics", auth=admin).status_code == 200
    # Feed, a wrong token.
    assert httpx.get(office.feed_url).status_code == 200
    assert httpx.get(server.url + "/feeds/" + BAD_JSON_TEXT + ".ics").status_code == 404
    # Failed logins, an Authorization header over the server's limit.
    assert httpx.get(server.dav, auth=("alice", WRONG_PASSWORD)).status_code == 401
    # A password typed into the login field.
    assert httpx.get(server.dav, auth=(PASSWORD_AS_LOGIN, "x")).status_code == 401
    assert httpx.get(server.url + "/api/v1/me", auth=("alice", WRONG_PASSWORD)).status_code == 401
    huge = {"Authorization": "Basic " + _basic("alice", HUGE_PASSWORD)}
    assert httpx.get(server.url + "/api/v1/me", headers=huge).status_code in (400, 401, 431)
    assert httpx.get(server.dav, headers=huge).status_code in (400, 401, 431)
    # Malformed API input.
    bad = office.alice.post(
        f"/organisations/{office.org}/usagers",
        content=f'{{"first_name": "{BAD_JSON_TEXT}", ',
        headers={"Content-Type": "application/json"},
    )
    assert bad.status_code == 400
    unknown = office.alice.post(
        f"/organisations/{office.org}/usagers",
        json={**USAGER, "email": BAD_JSON_TEXT},
    )
    assert unknown.status_code == 422
