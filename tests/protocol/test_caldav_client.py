"""CalDAV through the ``caldav`` library against a real server, SQLite and PostgreSQL."""

from __future__ import annotations

import secrets
from datetime import timedelta

import caldav
import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, Server
from tests.dates import at, monday
from tests.ics import event

AUTH = ("admin", ADMIN_PASSWORD)


@pytest.fixture
def calendar(module_server: Server) -> caldav.Calendar:
    """An ordinary calendar made by the client, of an agent of the test's own
    (the tests share the module's server; admin's calendars stay as they were)."""
    login = f"agent-{secrets.token_hex(4)}"
    agent = {"login": login, "services": ["PMI"], "password": f"{login}-password"}
    with httpx.Client(base_url=module_server.url + "/api/v1", auth=AUTH) as admin:
        org = admin.get("/me").json()["organisations"][0]["id"]
        created = admin.post(f"/organisations/{org}/agents", json=agent)
        assert created.status_code == 201, created.text
    client = caldav.DAVClient(url=module_server.dav, username=login, password=agent["password"])
    return client.principal().make_calendar(name="Agenda", cal_id="agenda")


def test_agent_sees_its_three_agendas(module_server: Server) -> None:
    client = caldav.DAVClient(url=module_server.dav, username="admin", password=ADMIN_PASSWORD)
    names = sorted(c.get_display_name() for c in client.principal().calendars())
    # ...and the ordinary calendar the test harness adds.
    assert names == ["Indisponibilités", "Plages d'ouverture", "RDV", "admin/agenda"]


def test_time_range_search_finds_single_and_recurring_events(calendar: caldav.Calendar) -> None:
    window = monday(10)  # the week searched: [window, window + 7 days)
    series_start = window - timedelta(weeks=9)
    calendar.save_event(event("single-in", at(window + timedelta(days=2), 9)))
    calendar.save_event(event("single-out", at(window + timedelta(days=33), 9)))
    # Weekly, 6 occurrences: the last is 4 weeks before the window.
    calendar.save_event(event("weekly-ended", at(series_start, 14), rrule="FREQ=WEEKLY;COUNT=6"))
    # Weekly, open-ended: has an occurrence in every week.
    open_start = at(series_start + timedelta(days=1), 10)
    calendar.save_event(event("weekly-open", open_start, rrule="FREQ=WEEKLY"))
    # Every 4 weeks from a Wednesday: window - 1 week + 2 days, then window + 3 weeks + 2 days,
    # none in the window.
    four_weekly = at(series_start + timedelta(days=2), 10)
    calendar.save_event(event("four-weekly", four_weekly, rrule="FREQ=WEEKLY;INTERVAL=4;COUNT=10"))
    found = calendar.search(start=at(window, 0), end=at(window + timedelta(days=7), 0), event=True)
    uids = sorted(str(e.icalendar_component["UID"]) for e in found)
    assert uids == ["single-in", "weekly-open"]


def test_expand_returns_each_occurrence(calendar: caldav.Calendar) -> None:
    first = monday()
    calendar.save_event(event("weekly", at(first, 9), rrule="FREQ=WEEKLY;COUNT=10"))
    calendar.save_event(event("outside", at(first + timedelta(days=300), 9)))
    found = calendar.search(
        start=at(first, 0),
        end=at(first + timedelta(days=31), 0),
        event=True,
        expand=True,
        server_expand=True,
    )
    days = sorted(e.icalendar_component["DTSTART"].dt.date() for e in found)
    assert days == [first + timedelta(weeks=n) for n in range(5)]


def test_sync_token_reports_only_changes(calendar: caldav.Calendar) -> None:
    day = monday()
    for n in range(5):
        calendar.save_event(event(f"e{n}", at(day + timedelta(days=n), 9)))
    synced = calendar.objects_by_sync_token(load_objects=False)
    assert len(list(synced)) == 5
    token = synced.sync_token
    calendar.save_event(event("e1", at(day + timedelta(days=1), 11), summary="moved"))
    calendar.event_by_uid("e3").delete()
    calendar.save_event(event("e9", at(day + timedelta(days=17), 9)))
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
    calendar.save_event(event("c1", at(monday(), 9)))
    second = ctag()
    calendar.event_by_uid("c1").delete()
    assert len({first, second, ctag()}) == 3
