"""Time zones are reused by VTIMEZONE content, never by name alone."""

from __future__ import annotations

from datetime import datetime, timedelta

from radicale import item as radicale_item

from plugins import timezone_cache
from tests.ics import event

timezone_cache.install()


def _start(text: str):  # type: ignore[no-untyped-def]
    return radicale_item.read_components(text)[0].vevent.dtstart.value


def test_same_definition_gives_the_same_zone_with_correct_offsets() -> None:
    winter = _start(event("w", datetime(2027, 1, 15, 9, 0)))
    summer = _start(event("s", datetime(2027, 7, 15, 9, 0)))
    assert winter.tzinfo is summer.tzinfo
    assert winter.utcoffset() == timedelta(hours=1)
    assert summer.utcoffset() == timedelta(hours=2)


def test_a_different_definition_under_the_same_name_gets_its_own_zone() -> None:
    text = event("x", datetime(2027, 1, 15, 9, 0))
    shifted = text.replace("TZOFFSETTO:+0100", "TZOFFSETTO:+0500").replace(
        "TZOFFSETFROM:+0100", "TZOFFSETFROM:+0500"
    )
    when = datetime(2027, 1, 15, 9, 0)

    def zone(calendar_text: str):  # type: ignore[no-untyped-def]
        return radicale_item.read_components(calendar_text)[0].vtimezone.tzinfo

    assert zone(text).utcoffset(when) == timedelta(hours=1)
    assert zone(shifted).utcoffset(when) == timedelta(hours=5)
    assert zone(text) is zone(text)
