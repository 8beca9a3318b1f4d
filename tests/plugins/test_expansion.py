"""Kept expansions give, for any window, the instances recurring_ical_events
gives, each in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import icalendar
import pytest

from plugins import expansion
from plugins.item_index import item_write, prepared_item
from tests.plugins.series import MARCH, SERIES, expected, found, timestamps

NOW = datetime(2027, 1, 1, tzinfo=UTC).timestamp()
WINDOWS = [
    MARCH,
    (datetime(2027, 3, 28, tzinfo=UTC), datetime(2027, 3, 29, tzinfo=UTC)),  # Paris DST day
    (datetime(2027, 3, 17, 9, tzinfo=UTC), datetime(2027, 3, 17, 9, 30, tzinfo=UTC)),
    (datetime(2027, 5, 1, tzinfo=UTC), datetime(2027, 6, 3, tzinfo=UTC)),
    (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 12, 31, tzinfo=UTC)),
]


def _kept(text: str, now: float = NOW) -> expansion.Expansion:
    """The item's expansion between its first start and last end as indexed."""
    indexed = item_write(prepared_item(text, "alice/rdv"), "x.ics")
    return expansion.expand(text, indexed.t_start, indexed.t_end, now)


@pytest.mark.parametrize("href", sorted(SERIES))
@pytest.mark.parametrize("window", WINDOWS, ids=lambda w: f"{w[0]:%m%d}-{w[1]:%m%d}")
def test_kept_expansion_matches_recurring_ical_events(
    href: str, window: tuple[datetime, datetime]
) -> None:
    text = SERIES[href]
    kept = _kept(text)
    start, end = timestamps(window)
    assert kept.covers(start, end)
    instances = kept.between(start, end)
    want = expected(text, window)
    assert len(instances) == len(want)
    if instances:
        assert found(kept.calendar_data(instances)) == want


def test_instances_are_utc_and_keep_the_other_properties() -> None:
    text = SERIES["dst.ics"]
    kept = _kept(text)
    data = kept.calendar_data(kept.between(*timestamps(MARCH)))
    assert "DTSTART:20270322T080000Z\r\nDTEND:20270322T083000Z\r\n" in data
    assert "DTSTART:20270329T070000Z\r\nDTEND:20270329T073000Z\r\n" in data
    assert "RECURRENCE-ID:20270329T070000Z\r\n" in data
    assert data.count("SUMMARY:Permanence\r\n") == 3
    assert data.startswith("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tests//EN\r\n")
    assert "TZID" not in data and "RRULE" not in data


def test_single_events_have_no_recurrence_id() -> None:
    text = SERIES["single.ics"]
    kept = _kept(text)
    data = kept.calendar_data(kept.between(*timestamps(MARCH)))
    assert "DTSTART:20270330T163000Z\r\nDTEND:20270330T180000Z\r\n" in data
    assert "RECURRENCE-ID" not in data


def test_all_day_instances_stay_dates() -> None:
    text = SERIES["allday.ics"]
    kept = _kept(text)
    data = kept.calendar_data(kept.between(*timestamps(MARCH)))
    assert "DTSTART;VALUE=DATE:20270326\r\nDTEND;VALUE=DATE:20270327\r\n" in data
    assert "RECURRENCE-ID;VALUE=DATE:20270329\r\nUID:allday\r\n" in data
    assert "DTSTART;VALUE=DATE:20270327" not in data  # the excluded day
    assert data.count("SUMMARY:Fermeture (matin)") == 1


def test_a_window_past_the_horizon_is_expanded_for_itself() -> None:
    text = SERIES["forever.ics"]
    kept = _kept(text)
    far = (datetime(2035, 1, 1, tzinfo=UTC), datetime(2035, 3, 1, tzinfo=UTC))
    assert not kept.covers(*timestamps(far))
    window = expansion.expand_window(text, *timestamps(far), cap=100)
    assert found(window.calendar_data(window.between(*timestamps(far)))) == expected(text, far)
    assert len(window.instances) == 2


def test_an_old_series_is_kept_from_before_now() -> None:
    """A series begun long ago is kept from HORIZON_SECONDS before now, so
    windows around now are answered from it."""
    text = SERIES["forever.ics"]
    kept = _kept(text, NOW + 10 * 366 * 86400)
    assert kept.since > item_write(prepared_item(text, "a/b"), "x.ics").t_start
    near = (datetime(2037, 1, 1, tzinfo=UTC), datetime(2037, 2, 1, tzinfo=UTC))
    assert kept.covers(*timestamps(near))
    assert found(kept.calendar_data(kept.between(*timestamps(near)))) == expected(text, near)


def test_a_dense_window_is_refused_past_the_cap() -> None:
    text = SERIES["dst.ics"].replace("RRULE:FREQ=WEEKLY;COUNT=6", "RRULE:FREQ=MINUTELY")
    start = datetime(2027, 3, 15, 8, tzinfo=UTC)
    with pytest.raises(expansion.TooManyInstances):
        expansion.expand_window(text, *timestamps((start, start + timedelta(days=1))), cap=500)
    kept = _kept(text)
    assert len(kept.instances) == expansion.MAX_KEPT
    assert not kept.covers(*timestamps((start, start + timedelta(days=2))))


def test_limit_recurrence_set_keeps_the_master_and_the_overrides_of_the_window() -> None:
    text = SERIES["overrides.ics"]
    kept = _kept(text)
    march = kept.limited(text, *timestamps(MARCH))
    summaries = [str(e["SUMMARY"]) for e in icalendar.Calendar.from_ical(march).walk("VEVENT")]
    # Each override replaces a March instance or is moved into March (the
    # one from April); in May only the one moved there is.
    assert summaries == ["Atelier", "Atelier (déplacé)", "Atelier (reporté)", "Atelier (avancé)"]
    may = (datetime(2027, 5, 1, tzinfo=UTC), datetime(2027, 6, 1, tzinfo=UTC))
    limited = kept.limited(text, *timestamps(may))
    summaries = [str(e["SUMMARY"]) for e in icalendar.Calendar.from_ical(limited).walk("VEVENT")]
    assert summaries == ["Atelier", "Atelier (reporté)"]
    assert "BEGIN:VTIMEZONE" in limited


def test_cache_is_bounded_and_least_recently_used_goes_first() -> None:
    text = SERIES["dst.ics"]
    one = _kept(text)
    cache = expansion.ExpansionCache(max_bytes=one.size() * 2 + 1)
    cache.put("a", one)
    cache.put("b", one)
    assert cache.get("a") is one  # a is now the most recent
    cache.put("c", one)
    assert cache.get("b") is None and cache.get("a") is one and cache.get("c") is one
