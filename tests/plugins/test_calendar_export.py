"""The streamed whole-calendar export says exactly what Radicale's would."""

from __future__ import annotations

from datetime import datetime

import pytest
from radicale import item as radicale_item
from radicale import storage as radicale_storage

from plugins import calendar_export
from plugins.calendar_export import export_pieces
from tests.ics import event


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
    pieces = export_pieces(lambda: TEXTS, META["D:displayname"], META["C:calendar-description"])
    ours = b"".join(pieces).decode()
    assert ours == _RadicaleView().serialize()
    assert ours.count("BEGIN:VTIMEZONE") == 1
    assert ours.count("BEGIN:VEVENT") == 2 and "BEGIN:VTODO" in ours


def test_export_of_an_empty_calendar_is_a_valid_envelope() -> None:
    empty = b"".join(export_pieces(lambda: [], None, None))
    assert empty.startswith(b"BEGIN:VCALENDAR\r\n") and empty.endswith(b"END:VCALENDAR\r\n")
    assert b"X-WR-CALNAME" not in empty


def test_export_comes_in_pieces_each_timezone_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(calendar_export, "PIECE", 1)
    texts = TEXTS * 3
    pieces = list(export_pieces(lambda: texts, "RDV", None))
    # The envelope, the time zones, a piece per item's components, the end.
    assert len(pieces) == 2 + len(texts) + 1
    assert pieces[-1] == b"END:VCALENDAR\r\n"
    whole = b"".join(pieces).decode()
    assert whole.count("BEGIN:VTIMEZONE") == 1 and whole.count("BEGIN:VEVENT") == 6
    assert whole.index("BEGIN:VTIMEZONE") < whole.index("BEGIN:VEVENT")
