"""vobject, as calserver installs it: a TEXT value keeps its bare commas and
is written back escaped; a property vobject does not know keeps its value."""

from __future__ import annotations

import vobject

from plugins import vobject_text

TEXT = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:a\r\n"
    "DTSTAMP:20270101T000000Z\r\nDTSTART:20270101T100000Z\r\n"
    "SUMMARY:Suivi PMI, vaccins\r\nDESCRIPTION:une\\, deux\\; trois\\nquatre, cinq\r\n"
    "X-CALSERVER-MOTIF:1,2,3\r\nGEO:48.85;2.35\r\nCATEGORIES:a,b\r\n"
    "END:VEVENT\r\nEND:VCALENDAR\r\n"
)


def test_text_values_are_read_whole_and_written_escaped() -> None:
    vobject_text.install()
    vevent = vobject.readOne(TEXT).vevent
    assert vevent.summary.value == "Suivi PMI, vaccins"
    assert vevent.description.value == "une, deux; trois\nquatre, cinq"
    assert vevent.categories.value == ["a", "b"]  # a real list stays a list
    written = vobject.readOne(TEXT).serialize()
    assert "SUMMARY:Suivi PMI\\, vaccins\r\n" in written
    assert "DESCRIPTION:une\\, deux\\; trois\\nquatre\\, cinq\r\n" in written
    assert "X-CALSERVER-MOTIF:1,2,3\r\n" in written
    assert "GEO:48.85;2.35\r\n" in written
    again = vobject.readOne(written).vevent
    assert again.summary.value == "Suivi PMI, vaccins"
