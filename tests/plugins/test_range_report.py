"""A calendar-query for whole VEVENTs in a time range, answered from the
occurrence index and the stored texts, says byte for byte what Radicale's
generic REPORT says, and only to whom Radicale says it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from plugins import range_report
from plugins.application import Application
from storage.database import Database
from tests.plugins.conftest import (
    REFUSED_OR_ANSWERED,
    Call,
    calls_of,
    store_in_alice_rdv,
    streamed,
    unsized,
)
from tests.plugins.series import MARCH, SERIES

_CAL = "urn:ietf:params:xml:ns:caldav"
# Past the stored occurrences of the endless series: Radicale's filter decides.
LATER = (datetime(2041, 3, 1, tzinfo=UTC), datetime(2041, 3, 8, tzinfo=UTC))
NOTHING = (datetime(1990, 1, 1, tzinfo=UTC), datetime(1990, 2, 1, tzinfo=UTC))
TAGS = {"etag": "<D:getetag/>", "data": "<C:calendar-data/>"}


def _query(
    window: tuple[datetime, datetime], props: tuple[str, ...] = ("etag", "data"), range_: str = ""
) -> bytes:
    start, end = (f"{moment:%Y%m%dT%H%M%SZ}" for moment in window)
    range_ = range_ or f'start="{start}" end="{end}"'
    return (
        f'<C:calendar-query xmlns:D="DAV:" xmlns:C="{_CAL}"><D:prop>'
        + "".join(TAGS.get(p, p) for p in props)
        + '</D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
        f"<C:time-range {range_}/></C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"
    ).encode()


@pytest.fixture
def call(db: Database, dav: Call) -> Iterator[Call]:
    """alice's rdv agenda holds the awkward series, one of them at an href that
    needs escapes."""
    texts = {**SERIES, "é & <x>.ics": SERIES["single.ics"].replace("UID:single", "UID:s2")}
    store_in_alice_rdv(db, texts)
    yield dav


@pytest.fixture
def generic(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Switch the listing off: Radicale answers every query itself."""
    return lambda: monkeypatch.setattr(Application, "_range_listing", lambda *a, **k: None)


@pytest.fixture
def answered(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the queries answered from the index."""
    return calls_of(monkeypatch, range_report, "multistatus")


@pytest.mark.parametrize(
    ("window", "props"),
    [
        (MARCH, ("etag", "data")),
        (MARCH, ("data", "etag")),
        (MARCH, ("etag",)),
        (MARCH, ("data",)),
        (LATER, ("etag", "data")),
        (NOTHING, ("etag", "data")),
    ],
)
def test_same_bytes_as_radicale(
    call: Call,
    generic: Callable[[], None],
    answered: list[int],
    window: tuple[datetime, datetime],
    props: tuple[str, ...],
) -> None:
    body = _query(window, props)
    fast = call("alice", "REPORT", "/alice/rdv/", body, depth="1")
    assert answered and fast[0].startswith("207")
    generic()
    slow = call("alice", "REPORT", "/alice/rdv/", body, depth="1")
    assert streamed(fast) and not streamed(slow)
    assert unsized(fast) == unsized(slow)


def test_what_the_answers_hold(call: Call) -> None:
    march = call("alice", "REPORT", "/alice/rdv/", _query(MARCH), depth="1")[1]
    assert f"<href>/dav/alice/rdv/{quote('é & <x>.ics')}</href>".encode() in march
    assert b"dst.ics" in march and b"june.ics" not in march
    later = call("alice", "REPORT", "/alice/rdv/", _query(LATER), depth="1")[1]
    assert b"forever.ics" in later and b"dst.ics" not in later


def test_open_ended_range_same_bytes_as_radicale(
    call: Call, generic: Callable[[], None], answered: list[int]
) -> None:
    body = _query(MARCH, range_='start="20270601T000000Z"')
    fast = call("alice", "REPORT", "/alice/rdv/", body, depth="1")
    assert answered and b"june.ics" in fast[1]
    generic()
    assert unsized(fast) == unsized(call("alice", "REPORT", "/alice/rdv/", body, depth="1"))


def test_refusals_are_radicale_s(
    call: Call, generic: Callable[[], None], answered: list[int]
) -> None:
    asked = REFUSED_OR_ANSWERED
    fast = [call(login, "REPORT", path, _query(MARCH), depth="1") for login, path in asked]
    assert len(answered) == 1  # only bob's query of alice's rdv
    generic()
    slow = [call(login, "REPORT", path, _query(MARCH), depth="1") for login, path in asked]
    assert [unsized(a) for a in fast] == [unsized(a) for a in slow]


def test_other_queries_are_left_to_radicale(call: Call, answered: list[int]) -> None:
    bodies = [
        _query(MARCH, ("etag", "<D:getcontenttype/>")),
        _query(MARCH, ("etag", "data", "data")),
        _query(MARCH, ('<C:calendar-data><C:comp name="VCALENDAR"/></C:calendar-data>',)),
        _query(MARCH).replace(b'name="VEVENT"', b'name="VTODO"'),
        _query(MARCH, range_='start="yesterday"'),
    ]
    for body in bodies:
        call("alice", "REPORT", "/alice/rdv/", body, depth="1")
    assert not answered


def test_more_events_than_the_cap_are_left_to_radicale(
    call: Call, answered: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(range_report, "too_many_events", lambda texts, cap: True)
    status, answer, _ = call("alice", "REPORT", "/alice/rdv/", _query(MARCH), depth="1")
    assert status.startswith("207") and b"dst.ics" in answer and not answered


def test_events_counted_as_radicale_counts_them() -> None:
    texts = [SERIES["overrides.ics"], SERIES["single.ics"]]
    radicale = sum(line.upper() == "BEGIN:VEVENT" for text in texts for line in text.splitlines())
    assert range_report.too_many_events(texts, radicale - 1)
    assert not range_report.too_many_events(texts, radicale)
    assert not range_report.too_many_events(texts, 0)  # no cap
