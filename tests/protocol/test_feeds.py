"""Webcal feeds over real HTTP: what Outlook and Google need, conditional
GET, rotation, and no personal data whatever the usagers are called."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime

import httpx
import icalendar
import pytest
import vobject
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Server
from tests.protocol.office import Office, ok


@pytest.fixture
def office(server: Server) -> Iterator[Office]:
    office = Office(server)
    yield office
    office.close()


def _check_calendar_file(body: bytes) -> icalendar.Calendar:
    text = body.decode("utf-8")
    assert "\n" not in text.replace("\r\n", "")  # every line ends in CRLF
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    vobject.readOne(text)
    calendar = icalendar.Calendar.from_ical(body)
    tzids = {tz["TZID"] for tz in calendar.walk("VTIMEZONE")}
    used = set(re.findall(r";TZID=([^:;]+)", text))
    assert used <= tzids, used - tzids
    return calendar


def test_feed_is_what_outlook_and_google_expect(office: Office) -> None:
    office.book({"first_name": "Camille", "last_name": "Durand", "email": "c@example.org"})
    answer = httpx.get(office.feed_url)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert answer.headers["Content-Disposition"].startswith("inline")
    assert "Content-Encoding" not in answer.headers
    calendar = _check_calendar_file(answer.content)
    assert calendar["X-WR-CALNAME"] and "REFRESH-INTERVAL" in calendar
    assert str(calendar["X-PUBLISHED-TTL"]) == "PT1H"
    (vevent,) = calendar.walk("VEVENT")
    assert vevent["SUMMARY"] == "Consultation PMI"
    assert vevent["LOCATION"] == "Mairie annexe, 1 place de la Mairie, 75011 Paris"
    assert "/backoffice/rdvs/" in str(vevent["URL"])
    body = answer.text
    for secret in ("Camille", "Durand", "c@example.org", "ATTENDEE", "ORGANIZER", "CONTACT"):
        assert secret not in body
    head = httpx.head(office.feed_url)
    assert head.status_code == 200 and head.headers["ETag"] == answer.headers["ETag"]


def test_conditional_get_and_each_change(office: Office) -> None:
    first = httpx.get(office.feed_url)
    etag = first.headers["ETag"]
    assert etag.startswith('"')  # strong
    unchanged = httpx.get(office.feed_url, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    since = httpx.get(
        office.feed_url, headers={"If-Modified-Since": first.headers["Last-Modified"]}
    )
    assert since.status_code == 304
    rdv = office.book()
    booked = httpx.get(office.feed_url, headers={"If-None-Match": etag})
    assert booked.status_code == 200
    (booked_event,) = icalendar.Calendar.from_ical(booked.content).walk("VEVENT")
    uid = str(booked_event["UID"])
    moved_to = next(office.slots)
    path = f"/agents/{office.agent}/rdvs/{rdv['id']}"
    ok(office.alice.patch(path, json={"starts_at": moved_to}))
    moved = httpx.get(office.feed_url, headers={"If-None-Match": booked.headers["ETag"]})
    assert moved.status_code == 200
    (vevent,) = icalendar.Calendar.from_ical(moved.content).walk("VEVENT")
    assert str(vevent["UID"]) == uid  # the same event for the client, moved
    assert vevent["DTSTART"].dt == datetime.fromisoformat(moved_to)
    assert int(vevent["SEQUENCE"]) == 1
    ok(office.alice.delete(path))
    cancelled = httpx.get(office.feed_url, headers={"If-None-Match": moved.headers["ETag"]})
    assert cancelled.status_code == 200 and uid not in cancelled.text


def test_rotation_kills_the_old_url_at_once(office: Office) -> None:
    old = office.feed_url
    assert httpx.get(old).status_code == 200
    new = ok(office.alice.post(f"/agents/{office.agent}/feed/rotate"))
    assert httpx.get(old).status_code == 404
    assert httpx.get(new["https"]).status_code == 200
    assert new["webcal"].startswith("webcal://") and "calendar.google.com" in new["google"]
    token = new["https"].rsplit("/", 1)[1].removesuffix(".ics")
    assert len(token) >= 22 and "alice" not in token.lower()
    assert httpx.get(office.server.url + "/feeds/" + "x" * len(token) + ".ics").status_code == 404


def test_availability_is_in_the_feed_only_when_asked(office: Office) -> None:
    assert "Plage d'ouverture" not in httpx.get(office.feed_url).text
    ok(office.alice.patch(f"/agents/{office.agent}/feed", json={"with_availability": True}))
    calendar = _check_calendar_file(httpx.get(office.feed_url).content)
    plages = [v for v in calendar.walk("VEVENT") if v["SUMMARY"] == "Plage d'ouverture"]
    assert plages and all(v["TRANSP"] == "TRANSPARENT" for v in plages)


NASTY = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=8,
    max_size=120,
).filter(lambda s: s.strip() and len(s.strip()) >= 8)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    first_name=NASTY,
    last_name=NASTY,
    local_part=st.from_regex(r"[a-z0-9._%+-]{8,30}", fullmatch=True),
    phone=st.from_regex(r"\+33[1-9][0-9]{8}", fullmatch=True),
    address=NASTY,
    notes=NASTY,
)
def test_no_usager_data_ever_reaches_a_feed(
    office: Office,
    first_name: str,
    last_name: str,
    local_part: str,
    phone: str,
    address: str,
    notes: str,
) -> None:
    reference = httpx.get(office.feed_url).text  # whitelisted content only
    usager = {
        "first_name": first_name[:200],
        "last_name": last_name[:200],
        "email": f"{local_part}@example.org",
        "phone": phone,
        "address": address[:400],
        "notes": notes,
    }
    office.book(usager)
    feed = httpx.get(office.feed_url).text
    unfolded = feed.replace("\r\n ", "")
    for value in usager.values():
        for form in {value, value.strip(), icalendar.vText(value).to_ical().decode()}:
            if len(form) >= 8 and form not in reference:
                assert form not in unfolded, form
    for name in ("ATTENDEE", "ORGANIZER", "CONTACT"):
        assert f"\r\n{name}" not in feed
