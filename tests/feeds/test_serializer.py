"""The feed serializer on plain data: only whitelisted properties, files that
icalendar and vobject both read, CRLF and 75-octet lines, deterministic bytes."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import icalendar
import vobject

from feeds.serializer import WHITELIST, FeedEvent, serialize, vevent_bytes

EVENT = FeedEvent(
    uid="r1@calserver",
    start=datetime(2027, 3, 28, 8, 30, tzinfo=UTC),  # the day of the switch to summer time
    end=datetime(2027, 3, 28, 9, 0, tzinfo=UTC),
    summary="Consultation de protection maternelle et infantile – première visite",
    last_modified=datetime(2027, 1, 5, 10, 0, tzinfo=UTC),
    sequence=3,
    location="Maison départementale des solidarités, 12 boulevard de l'Hôpital, 75013 Paris",
    url="https://rdv.example.fr/backoffice/rdvs/r1%40calserver",
)


def _feed(*events: FeedEvent) -> bytes:
    return serialize(
        "RDV – Alice",
        "Europe/Paris",
        events,
        refresh=timedelta(hours=1),
        first=date(2027, 2, 1),
        last=date(2028, 2, 1),
    )


def test_only_whitelisted_properties_and_the_expected_values() -> None:
    calendar = icalendar.Calendar.from_ical(_feed(EVENT))
    (vevent,) = calendar.walk("VEVENT")
    assert set(vevent.keys()) <= WHITELIST
    assert {"UID", "DTSTAMP", "DTSTART", "DTEND", "SEQUENCE", "LAST-MODIFIED"} <= set(vevent)
    assert vevent["DTSTART"].dt.strftime("%H:%M %Z") == "10:30 CEST"
    assert int(vevent["SEQUENCE"]) == 3 and vevent["STATUS"] == "CONFIRMED"
    # The input type itself cannot carry anything else.
    assert {f.name for f in dataclasses.fields(FeedEvent)} == {
        "uid", "start", "end", "summary", "last_modified", "sequence",
        "location", "url", "status", "transparent",
    }  # fmt: skip


def test_a_file_outlook_google_and_both_parsers_accept() -> None:
    body = _feed(EVENT, dataclasses.replace(EVENT, uid="r2", transparent=True))
    text = body.decode("utf-8")
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    assert max(len(line.encode()) for line in text.split("\r\n")) <= 75
    vobject.readOne(text)
    calendar = icalendar.Calendar.from_ical(body)
    assert [tz["TZID"] for tz in calendar.walk("VTIMEZONE")] == ["Europe/Paris"]
    assert "TZID=Europe/Paris" in text
    assert calendar["X-WR-CALNAME"] == "RDV – Alice"
    assert str(calendar["X-PUBLISHED-TTL"]) == "PT1H"
    assert "REFRESH-INTERVAL;VALUE=DURATION:PT1H" in text


def test_the_same_state_gives_the_same_bytes() -> None:
    first = _feed(EVENT)
    vevent_bytes.cache_clear()  # else the second build reads the first one's bytes back
    assert _feed(dataclasses.replace(EVENT)) == first
    assert _feed(EVENT) != _feed(dataclasses.replace(EVENT, sequence=4))
