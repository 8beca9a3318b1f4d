"""The streamed whole-calendar export says exactly what Radicale's would."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

import pytest
from radicale import item as radicale_item
from radicale import storage as radicale_storage

from booking import events
from plugins import calendar_export
from plugins.calendar_export import export_pieces
from tests.ics import PARIS_VTIMEZONE, event


def _stored(text: str) -> str:
    vobject_item = radicale_item.read_components(text)[0]
    return radicale_item.Item(collection_path="a/rdv", vobject_item=vobject_item).serialize()


TEXTS = [
    _stored(event("one", datetime(2027, 1, 4, 9, 0))),
    _stored(event("two", datetime(2027, 7, 4, 9, 0), rrule="FREQ=WEEKLY;COUNT=3")),
    _stored(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VTODO\r\nUID:three\r\n"
        "DTSTAMP:20260101T000000Z\r\nSUMMARY:Rappeler\r\nEND:VTODO\r\nEND:VCALENDAR\r\n"
    ),
]
META = {"tag": "VCALENDAR", "D:displayname": "RDV", "C:calendar-description": "Agenda; test"}


class _RadicaleView(radicale_storage.BaseCollection):
    path = "a/rdv"

    def get_all(self):  # type: ignore[no-untyped-def]
        return [radicale_item.Item(collection_path=self.path, text=t) for t in TEXTS]

    def get_meta(self, key=None):  # type: ignore[no-untyped-def]
        return META if key is None else META.get(key)


def test_export_matches_radicale_line_for_line() -> None:
    pieces = export_pieces(TEXTS, META["D:displayname"], META["C:calendar-description"])
    ours = b"".join(pieces).decode()
    assert ours == _RadicaleView().serialize()
    assert ours.count("BEGIN:VTIMEZONE") == 1
    assert ours.count("BEGIN:VEVENT") == 2 and "BEGIN:VTODO" in ours


def test_export_of_an_empty_calendar_is_a_valid_envelope() -> None:
    empty = b"".join(export_pieces([], None, None))
    assert empty.startswith(b"BEGIN:VCALENDAR\r\n") and empty.endswith(b"END:VCALENDAR\r\n")
    assert b"X-WR-CALNAME" not in empty


def _line_by_line(texts: Iterable[str], name: str | None, description: str | None) -> str:
    """The export as calserver wrote it before components were cut out with
    ``str.find``: every line of every text read, BEGIN/END counted (the
    oracle of the test below)."""

    def components(text: str) -> Iterator[tuple[str | None, str]]:
        depth, block, tzid, is_timezone = 0, [], None, False
        for line in text.split("\r\n"):
            upper = line.upper()
            if upper.startswith("BEGIN:"):
                depth += 1
                if depth == 2:
                    block, tzid, is_timezone = [], None, upper == "BEGIN:VTIMEZONE"
            if depth >= 2:
                block.append(line)
                if is_timezone and depth == 2 and upper.startswith("TZID:"):
                    tzid = line[len("TZID:") :]
            if upper.startswith("END:"):
                if depth == 2:
                    yield (tzid if is_timezone else None, "\r\n".join(block) + "\r\n")
                depth -= 1

    timezones: dict[str, str] = {}
    others: list[str] = []
    for text in texts:
        for tzid, block in components(text):
            if tzid is None:
                others.append(block)
            else:
                timezones.setdefault(tzid, block)
    envelope = b"".join(export_pieces([], name, description)).decode()
    cut = envelope.index("END:VCALENDAR\r\n")
    return envelope[:cut] + "".join(timezones.values()) + "".join(others) + envelope[cut:]


def _zone(tzid: str, offset: str = "+0100", extra: str = "") -> str:
    return (
        f"BEGIN:VTIMEZONE\r\nTZID:{tzid}\r\n{extra}BEGIN:STANDARD\r\nDTSTART:19700101T000000\r\n"
        f"TZOFFSETFROM:{offset}\r\nTZOFFSETTO:{offset}\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
    )


def _calendar(*components: str) -> str:
    return _stored(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tests//FR\r\nX-WR-TIMEZONE:Europe/Paris\r\n"
        + "".join(components)
        + "END:VCALENDAR\r\n"
    )


_LONG_TZID = "/freeassociation.sourceforge.net/Tzfile/Europe/Paris-with-a-rather-long-suffix"
_STAMP = "DTSTAMP:20260101T000000Z\r\n"
# Items as Radicale stores them, each awkward in its own way.
AWKWARD = [
    _stored(event("plain", datetime(2027, 1, 4, 9, 0))),
    # Two VTIMEZONEs in one item, the second one new.
    _calendar(
        PARIS_VTIMEZONE,
        _zone("America/New_York", "-0500"),
        "BEGIN:VEVENT\r\nUID:two-zones\r\n" + _STAMP,
        "DTSTART;TZID=Europe/Paris:20270105T090000\r\n",
        "DTEND;TZID=America/New_York:20270105T040000\r\nEND:VEVENT\r\n",
    ),
    # No VTIMEZONE at all; a task and a journal entry.
    _calendar("BEGIN:VTODO\r\nUID:todo\r\n" + _STAMP + "SUMMARY:Rappeler\r\nEND:VTODO\r\n"),
    _calendar(
        "BEGIN:VJOURNAL\r\nUID:journal\r\n" + _STAMP,
        "DESCRIPTION:BEGIN:VTIMEZONE puis END:VEVENT\\, écrit dans le texte\r\n",
        "END:VJOURNAL\r\n",
    ),
    # A series with an overridden occurrence (two VEVENTs), folded lines.
    _calendar(
        PARIS_VTIMEZONE,
        "BEGIN:VEVENT\r\nUID:series\r\n" + _STAMP,
        "DTSTART;TZID=Europe/Paris:20270104T100000\r\nRRULE:FREQ=WEEKLY;COUNT=4\r\n",
        "DESCRIPTION:" + "Pièces à apporter – justificatif de domicile. " * 6 + "\r\n",
        "END:VEVENT\r\nBEGIN:VEVENT\r\nUID:series\r\n" + _STAMP,
        "RECURRENCE-ID;TZID=Europe/Paris:20270111T100000\r\n",
        "DTSTART;TZID=Europe/Paris:20270111T140000\r\nEND:VEVENT\r\n",
    ),
    # A TZID long enough to be folded.
    _calendar(
        _zone(_LONG_TZID),
        "BEGIN:VEVENT\r\nUID:long-zone\r\n" + _STAMP,
        f"DTSTART;TZID={_LONG_TZID}:20270107T090000\r\nEND:VEVENT\r\n",
    ),
    # A VTIMEZONE inside an event (not one of the calendar's), with an event
    # and alarms nested in their own kind.
    _calendar(
        "BEGIN:VEVENT\r\nUID:nested\r\n" + _STAMP + "DTSTART:20270108T090000Z\r\n",
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:a\r\nTRIGGER:-PT5M\r\n",
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:b\r\nTRIGGER:-PT1M\r\nEND:VALARM\r\n",
        "END:VALARM\r\n",
        "BEGIN:VEVENT\r\nUID:inner\r\n" + _STAMP + "DTSTART:20270108T090000Z\r\nEND:VEVENT\r\n",
        _zone("Inner"),
        "END:VEVENT\r\n",
    ),
    _stored(event("last", datetime(2027, 1, 9, 9, 0), rrule="FREQ=DAILY;COUNT=2")),
    # Europe/Paris again, written otherwise: the first one met is kept.
    _calendar(
        _zone("Europe/Paris", extra="X-LIC-LOCATION:Europe/Paris\r\n"),
        "BEGIN:VEVENT\r\nUID:other-paris\r\n" + _STAMP,
        "DTSTART;TZID=Europe/Paris:20270106T090000\r\nEND:VEVENT\r\n",
    ),
]


@pytest.mark.parametrize("masked", [False, True], ids=["as stored", "masked"])
def test_export_is_what_reading_every_line_gave(masked: bool) -> None:
    """Item after item, as stored and as a colleague reads them masked
    (icalendar's serializer), with a name and description to escape."""
    texts = [events.masked(t) for t in AWKWARD] if masked else AWKWARD
    name, description = "RDV, accueil; été", "Agenda de l'accueil\nÉtage 2"
    ours = b"".join(export_pieces(iter(texts * 3), name, description)).decode()
    assert ours == _line_by_line(texts * 3, name, description)
    zones = ["Europe/Paris", "America/New_York"] + ([] if masked else [_LONG_TZID[:60]])
    for tzid in zones:
        assert ours.count(f"TZID:{tzid}") == 1
    if not masked:
        assert "X-LIC-LOCATION" not in ours  # the first Europe/Paris was kept
        assert ours.count("TZID:Inner") == 3  # left inside its event, once per copy
        assert ours.count("BEGIN:VTODO") == ours.count("BEGIN:VJOURNAL") == 3


def test_export_comes_in_bounded_pieces_each_timezone_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The texts are read once; what follows the time zones is spooled (to a
    file past a small size) and sent in pieces of bounded size."""
    monkeypatch.setattr(calendar_export, "PIECE", 1)
    monkeypatch.setattr(calendar_export, "_SENT_PIECE", 100)
    monkeypatch.setattr(calendar_export, "_SPOOL_IN_MEMORY", 1000)
    texts = TEXTS * 3
    pieces = list(export_pieces(iter(texts), "RDV", None))
    assert (
        pieces[0].startswith(b"BEGIN:VCALENDAR\r\n") and b"X-WR-CALNAME;VALUE=TEXT:RDV" in pieces[0]
    )
    assert pieces[1].startswith(b"BEGIN:VTIMEZONE") and pieces[1].count(b"BEGIN:VTIMEZONE") == 1
    assert pieces[-1] == b"END:VCALENDAR\r\n"
    assert all(len(p) <= 100 for p in pieces[2:-1]) and len(pieces) > 10
    whole = b"".join(pieces).decode()
    assert whole == b"".join(export_pieces(texts, "RDV", None)).decode()
    assert whole.count("BEGIN:VTIMEZONE") == 1 and whole.count("BEGIN:VEVENT") == 6
