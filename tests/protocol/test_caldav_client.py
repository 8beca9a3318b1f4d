"""CalDAV through the ``caldav`` library against a real server, SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime

import caldav
import pytest

from tests.conftest import ADMIN_PASSWORD, Server
from tests.ics import event


@pytest.fixture
def calendar(server: Server) -> caldav.Calendar:
    client = caldav.DAVClient(url=server.dav, username="admin", password=ADMIN_PASSWORD)
    return client.principal().calendar(cal_url=server.dav + "admin/agenda/")


def test_agent_sees_its_three_agendas(server: Server) -> None:
    client = caldav.DAVClient(url=server.dav, username="admin", password=ADMIN_PASSWORD)
    names = sorted(c.get_display_name() for c in client.principal().calendars())
    # ...and the ordinary calendar the test harness adds.
    assert names == ["Indisponibilités", "Plages d'ouverture", "RDV", "admin/agenda"]


def test_time_range_search_finds_single_and_recurring_events(calendar: caldav.Calendar) -> None:
    calendar.save_event(event("single-in", datetime(2027, 3, 10, 9, 0)))
    calendar.save_event(event("single-out", datetime(2027, 4, 10, 9, 0)))
    # Weekly from January, 6 occurrences: the last is 2027-02-08, before the window.
    calendar.save_event(
        event("weekly-ended", datetime(2027, 1, 4, 14, 0), rrule="FREQ=WEEKLY;COUNT=6")
    )
    # Weekly, open-ended: has an occurrence in every week.
    calendar.save_event(event("weekly-open", datetime(2027, 1, 5, 10, 0), rrule="FREQ=WEEKLY"))
    # Every 4 weeks: 2027-01-06, 02-03, 03-03, 03-31 -> none between 03-08 and 03-15.
    calendar.save_event(
        event("four-weekly", datetime(2027, 1, 6, 10, 0), rrule="FREQ=WEEKLY;INTERVAL=4;COUNT=10")
    )
    found = calendar.search(start=datetime(2027, 3, 8), end=datetime(2027, 3, 15), event=True)
    uids = sorted(str(e.icalendar_component["UID"]) for e in found)
    assert uids == ["single-in", "weekly-open"]


def test_expand_returns_each_occurrence(calendar: caldav.Calendar) -> None:
    calendar.save_event(event("weekly", datetime(2027, 3, 1, 9, 0), rrule="FREQ=WEEKLY;COUNT=10"))
    calendar.save_event(event("outside", datetime(2028, 1, 1, 9, 0)))
    found = calendar.search(
        start=datetime(2027, 3, 1),
        end=datetime(2027, 4, 1),
        event=True,
        expand=True,
        server_expand=True,
    )
    starts = sorted(e.icalendar_component["DTSTART"].dt.day for e in found)
    assert starts == [1, 8, 15, 22, 29]


def test_sync_token_reports_only_changes(calendar: caldav.Calendar) -> None:
    for n in range(5):
        calendar.save_event(event(f"e{n}", datetime(2027, 5, 3 + n, 9, 0)))
    synced = calendar.objects_by_sync_token(load_objects=False)
    assert len(list(synced)) == 5
    token = synced.sync_token
    calendar.save_event(event("e1", datetime(2027, 5, 4, 11, 0), summary="moved"))
    calendar.event_by_uid("e3").delete()
    calendar.save_event(event("e9", datetime(2027, 5, 20, 9, 0)))
    changed = calendar.objects_by_sync_token(sync_token=token, load_objects=False)
    hrefs = sorted(str(o.url).rsplit("/", 1)[1] for o in changed)
    assert len(hrefs) == 3
    assert any("e9" in h for h in hrefs) and any("e1" in h for h in hrefs)
    assert changed.sync_token != token


def test_ctag_changes_with_every_write(calendar: caldav.Calendar) -> None:
    from caldav.elements import cdav  # noqa: F401  (registers the namespaces)

    def ctag() -> str:
        props = calendar.get_properties([caldav.elements.dav.GetEtag()])
        return str(props["{DAV:}getetag"])

    first = ctag()
    calendar.save_event(event("c1", datetime(2027, 6, 1, 9, 0)))
    second = ctag()
    calendar.event_by_uid("c1").delete()
    assert len({first, second, ctag()}) == 3
