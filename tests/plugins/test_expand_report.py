"""calendar-query with <C:expand> answered from kept expansions: the instances
recurring_ical_events finds, each in UTC, to whom Radicale would answer."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from urllib.parse import quote

import icalendar
import pytest

from plugins import expand_report, expansion
from plugins.application import Application
from plugins.item_index import item_write, prepared_item
from storage import calendars
from storage.database import Database
from tests.plugins.conftest import REFUSED_OR_ANSWERED, Call, calls_of, store_in_alice_rdv
from tests.plugins.series import MARCH, SERIES, expected, found

_CAL = "urn:ietf:params:xml:ns:caldav"


def _query(window: tuple[datetime, datetime], data: str = "expand", props: str = "") -> bytes:
    start, end = (f"{moment:%Y%m%dT%H%M%SZ}" for moment in window)
    return (
        f'<C:calendar-query xmlns:D="DAV:" xmlns:C="{_CAL}"><D:prop><D:getetag/>{props}'
        f'<C:calendar-data><C:{data} start="{start}" end="{end}"/></C:calendar-data></D:prop>'
        '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
        f'<C:time-range start="{start}" end="{end}"/></C:comp-filter></C:comp-filter>'
        "</C:filter></C:calendar-query>"
    ).encode()


def _datas(answer: bytes) -> dict[str, str]:
    """calendar-data by item name."""
    return {
        response.findtext("{DAV:}href", "").rsplit("/", 1)[1]: response.findtext(
            f".//{{{_CAL}}}calendar-data", ""
        )
        for response in ET.fromstring(answer).iter("{DAV:}response")
    }


@pytest.fixture
def call(db: Database, dav: Call) -> Iterator[Call]:
    """alice's rdv agenda holds the awkward series (stored as a PUT stores them,
    without the booking rules: what is tested is the query)."""
    store_in_alice_rdv(db, SERIES)
    yield dav


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the items read to build an expansion."""
    return calls_of(monkeypatch, expansion, "_split")


@pytest.fixture
def answered(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the queries answered from expansions."""
    return calls_of(monkeypatch, expand_report, "multistatus")


def test_expanded_month_is_recurring_ical_events_in_utc(
    call: Call, builds: list[int], answered: list[int]
) -> None:
    status, answer, headers = call("alice", "REPORT", "/alice/rdv/", _query(MARCH), depth="1")
    assert status.startswith("207") and answered
    assert ("Content-Type", "text/xml; charset=utf-8") in headers
    datas = _datas(answer)
    wanted = {href for href, text in SERIES.items() if expected(text, MARCH)}
    assert set(datas) == wanted and "june.ics" not in datas
    for href in wanted:
        assert found(datas[href]) == expected(SERIES[href], MARCH), href
    # Radicale's "RECURRENCE-ID" of a plain event, its VTIMEZONE: none here.
    assert "RECURRENCE-ID" not in datas["single.ics"]
    assert b"VTIMEZONE" not in answer and b"TZID" not in answer
    etags = re.findall(rb"<getetag>([^<]*)</getetag>", answer)
    assert len(etags) == len(wanted) and all(e.startswith(b'"') for e in etags)


def test_expansions_are_kept_between_requests(
    call: Call, builds: list[int], answered: list[int]
) -> None:
    first = call("alice", "REPORT", "/alice/rdv/", _query(MARCH), depth="1")
    built = len(builds)
    assert built >= 8
    again = call("alice", "REPORT", "/alice/rdv/", _query(MARCH), depth="1")
    assert again == first and len(builds) == built  # nothing read again
    later = (datetime(2027, 3, 20, tzinfo=UTC), datetime(2027, 4, 10, tzinfo=UTC))
    call("alice", "REPORT", "/alice/rdv/", _query(later), depth="1")
    assert len(builds) == built
    assert len(answered) == 3


def test_a_changed_item_is_expanded_anew(
    call: Call, db: Database, builds: list[int], answered: list[int]
) -> None:
    call("alice", "REPORT", "/alice/rdv/", _query(MARCH), depth="1")
    text = SERIES["dst.ics"].replace("COUNT=6", "COUNT=2")
    with db.transaction(write=True) as conn:
        agenda = calendars.get_collection(conn, "alice/rdv")
        assert agenda is not None
        calendars.put_item(conn, agenda, item_write(prepared_item(text, agenda.path), "dst.ics"))
    built = len(builds)
    answer = call("alice", "REPORT", "/alice/rdv/", _query(MARCH), depth="1")[1]
    assert len(builds) == built + 1
    assert found(_datas(answer)["dst.ics"]) == expected(text, MARCH)


def test_limit_recurrence_set(call: Call, answered: list[int]) -> None:
    may = (datetime(2027, 5, 1, tzinfo=UTC), datetime(2027, 6, 1, tzinfo=UTC))
    answer = call("alice", "REPORT", "/alice/rdv/", _query(may, "limit-recurrence-set"))[1]
    assert answered
    datas = _datas(answer)
    assert set(datas) == {"overrides.ics", "forever.ics"}
    events = icalendar.Calendar.from_ical(datas["overrides.ics"]).walk("VEVENT")
    assert [str(e["SUMMARY"]) for e in events] == ["Atelier", "Atelier (reporté)"]
    # A series without overrides comes back whole, not expanded.
    whole = icalendar.Calendar.from_ical(datas["forever.ics"])
    assert whole.walk("VTIMEZONE") and "RRULE" in whole.walk("VEVENT")[0]


def test_too_many_instances_answer_400(call: Call, db: Database, answered: list[int]) -> None:
    dense = SERIES["dst.ics"].replace("RRULE:FREQ=WEEKLY;COUNT=6", "RRULE:FREQ=MINUTELY")
    with db.transaction(write=True) as conn:
        agenda = calendars.get_collection(conn, "alice/rdv")
        assert agenda is not None
        calendars.put_item(conn, agenda, item_write(prepared_item(dense, agenda.path), "d.ics"))
    status, _, _ = call("alice", "REPORT", "/alice/rdv/", _query(MARCH), depth="1")
    assert status.startswith("400")


@pytest.fixture
def generic(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    return lambda: monkeypatch.setattr(Application, "_expand_listing", lambda *a, **k: None)


def test_refusals_are_radicale_s(
    call: Call, generic: Callable[[], None], answered: list[int]
) -> None:
    asked = REFUSED_OR_ANSWERED
    fast = [call(login, "REPORT", path, _query(MARCH), depth="1") for login, path in asked]
    assert len(answered) == 1  # only bob's query of alice's rdv
    assert fast[0][0].startswith("207") and b"dst.ics" in fast[0][1]
    generic()
    slow = [call(login, "REPORT", path, _query(MARCH), depth="1") for login, path in asked]
    assert [status for status, _, _ in fast[1:]] == [status for status, _, _ in slow[1:]]
    assert not any(b"dst.ics" in answer for _, answer, _ in fast[1:])


def test_other_queries_are_left_to_radicale(call: Call, answered: list[int]) -> None:
    bodies = [
        _query(MARCH, props="<D:getcontenttype/>"),
        _query(MARCH).replace(b'name="VEVENT"', b'name="VTODO"'),
        _query(MARCH).replace(b"<C:expand", b"<C:limit-freebusy-set"),
        _query(MARCH).replace(
            b' start="20270301T000000Z" end="20270401T000000Z"/></C:c', b"/></C:c"
        ),
    ]
    for body in bodies:
        call("alice", "REPORT", "/alice/rdv/", body, depth="1")
    assert not answered


def test_hrefs_are_quoted_as_radicale_quotes_them(call: Call, db: Database) -> None:
    with db.transaction(write=True) as conn:
        agenda = calendars.get_collection(conn, "alice/rdv")
        assert agenda is not None
        item = prepared_item(SERIES["single.ics"].replace("UID:single", "UID:s2"), agenda.path)
        calendars.put_item(conn, agenda, item_write(item, "é & <x>.ics"))
    answer = call("alice", "REPORT", "/alice/rdv/", _query(MARCH), depth="1")[1]
    assert f"<href>/dav/alice/rdv/{quote('é & <x>.ics')}</href>".encode() in answer
