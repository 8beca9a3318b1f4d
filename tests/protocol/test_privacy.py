"""What leaves the server about an agenda says nothing of the usager or of
what a client wrote: a home visit's LOCATION from structured postcode and
city only, opaque UIDs and URLs in the feed, feed tokens stored only as a
hash, links from the configured public URL (never the request's Host)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import icalendar
import pytest
from sqlalchemy import select

from storage.database import Database
from storage.schema import agenda_events, agents
from tests import dates
from tests.conftest import Server, start_server
from tests.protocol.office import Office, ok

# What follows the postcode in a free-text address: floor, door code, name on the bell.
ADDRESS = "12 rue des Lilas 75011 Paris bât. C 3e étage porte gauche code 4B12A chez MARTINEZ"


@pytest.fixture
def office(module_server: Server) -> Iterator[Office]:
    """An agent of her own on the module's server: her feed holds only what the test booked."""
    office = Office(module_server, login=f"alice-{secrets.token_hex(4)}")
    yield office
    office.close()


def _vevents(feed_url: str, **kwargs: object) -> list[icalendar.Event]:
    answer = httpx.get(feed_url, **kwargs)  # type: ignore[arg-type]
    assert answer.status_code == 200, answer.text
    return list(icalendar.Calendar.from_ical(answer.content).walk("VEVENT"))


def _query(database_url: str, query):  # type: ignore[no-untyped-def]
    db = Database(database_url)
    try:
        with db.connection() as conn:
            return conn.execute(query).all()
    finally:
        db.dispose()


def test_home_visit_location_is_postcode_and_city_only(office: Office) -> None:
    service = ok(office.admin.get(f"/organisations/{office.org}/services"))[0]["id"]
    motif = {
        "name": f"Visite à domicile {office.login}",
        "service_id": service,
        "location_type": "home",
    }
    home = ok(office.admin.post(f"/organisations/{office.org}/motifs", json=motif), 201)["id"]
    day = dates.working_monday(3)  # an RDV: not on a public holiday
    plage = {
        "motif_ids": [home],
        "first_day": day.isoformat(),
        "start_time": "14:00",
        "end_time": "17:00",
    }
    ok(office.alice.post(f"/agents/{office.agent}/plages", json=plage), 201)
    usager = {
        "first_name": "Rosalind",
        "last_name": "Quenneville",
        "address": ADDRESS,
        "postcode": "75011",
        "city": "Paris",
    }
    usager_id = ok(office.alice.post(f"/organisations/{office.org}/usagers", json=usager), 201)
    rdv = {
        "agent_id": office.agent,
        "motif_id": home,
        "starts_at": dates.at(day, 14).isoformat(),
        "usager_ids": [usager_id["id"]],
    }
    ok(office.alice.post("/rdvs", json=rdv), 201)
    (vevent,) = _vevents(office.feed_url)
    assert str(vevent["LOCATION"]) == "À domicile (75011 Paris)"
    body = httpx.get(office.feed_url).text.replace("\r\n ", "")
    for fragment in ("Lilas", "étage", "porte", "4B12A", "MARTINEZ", "Quenneville"):
        assert fragment not in body
    refused = office.alice.post(
        f"/organisations/{office.org}/usagers",
        json={**usager, "postcode": "75011 Paris 3e"},
    )
    assert refused.status_code == 422 and "postcode" in refused.text


def test_feed_names_events_by_an_opaque_id_never_the_clients_uid(office: Office) -> None:
    uid = "rdv-jeanne-dupuis-0612345678"
    start = datetime.fromisoformat(next(office.slots))
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{_utc(start)}\r\n"
        "DURATION:PT30M\r\nSUMMARY:Jeanne Dupuis\r\n"
        f"X-CALSERVER-MOTIF:{office.motif}\r\nX-CALSERVER-LIEU:{office.lieu}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    url = f"{office.server.dav}{office.login}/rdv/{uid}.ics"
    put = httpx.put(url, content=text, auth=office.auth)
    assert put.status_code == 201, put.text
    (first,) = _vevents(office.feed_url)
    ((public_id,),) = _query(
        office.server.database_url,
        select(agenda_events.c.public_id).where(agenda_events.c.uid == uid),
    )
    assert str(first["UID"]) == f"{public_id}@calserver"
    assert str(first["URL"]).endswith(f"/backoffice/rdvs/{public_id}")
    feed = httpx.get(office.feed_url).text.replace("\r\n ", "")
    for fragment in ("jeanne", "dupuis", "0612345678"):
        assert fragment not in feed.lower()
    # The same RDV keeps its UID when it moves (clients track events by UID).
    moved = text.replace(_utc(start), _utc(datetime.fromisoformat(next(office.slots))))
    assert httpx.put(url, content=moved, auth=office.auth).status_code == 204
    (second,) = _vevents(office.feed_url)
    assert second["UID"] == first["UID"] and second["DTSTART"].dt != first["DTSTART"].dt


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def test_feed_token_is_stored_only_as_its_hash(office: Office) -> None:
    token = office.feed_url.rsplit("/", 1)[1].removesuffix(".ics")
    rows = _query(office.server.database_url, select(agents))
    assert "feed_token" not in agents.c
    assert not any(token in str(value) for row in rows for value in row)
    hashes = [r.feed_token_hash for r in rows if r.login == office.login]
    assert hashes == [hashlib.sha256(token.encode()).hexdigest()]
    # The URL is shown once; asking again says how to get a new one.
    again = ok(office.alice.get(f"/agents/{office.agent}/feed"))
    assert "https" not in again and token not in str(again)
    assert again["rotate"].endswith(f"/agents/{office.agent}/feed/rotate")
    assert httpx.get(office.feed_url).status_code == 200
    rotated = ok(office.alice.post(again["rotate"].removeprefix("/api/v1")))
    assert httpx.get(office.feed_url).status_code == 404
    assert httpx.get(rotated["https"]).status_code == 200


def test_links_use_the_bound_address_never_the_host_header(office: Office) -> None:
    office.book()
    headers = {"Host": "evil.example"}
    rotated = ok(office.alice.post(f"/agents/{office.agent}/feed/rotate", headers=headers))
    assert rotated["https"].startswith(office.server.url + "/feeds/")
    (vevent,) = _vevents(rotated["https"], headers=headers)
    assert str(vevent["URL"]).startswith(office.server.url + "/backoffice/rdvs/")
    assert "public_url is not set" in office.server.log()


def test_links_use_the_configured_public_url(database_url: str, tmp_path: Path) -> None:
    server = start_server(
        database_url, tmp_path / "public", extra_config="public_url = https://rdv.example.fr/\n"
    )
    office = Office(server)
    try:
        office.book()
        headers = {"Host": "evil.example"}
        links = ok(office.alice.post(f"/agents/{office.agent}/feed/rotate", headers=headers))
        assert links["https"].startswith("https://rdv.example.fr/feeds/")
        assert links["webcal"].startswith("webcal://rdv.example.fr/feeds/")
        local = server.url + links["https"].removeprefix("https://rdv.example.fr")
        (vevent,) = _vevents(local, headers=headers)
        assert str(vevent["URL"]).startswith("https://rdv.example.fr/backoffice/rdvs/")
        assert "public_url is not set" not in server.log()
    finally:
        office.close()
        server.stop()
