"""Property: whatever mix of plages, absences and RDVs is written by the JSON
API and by CalDAV (and written back unchanged by a calendar client), reading
them back by both paths gives every motif, lieu, usager and time that was
accepted, nothing that was refused, and the booking index equals what a fresh
``booking.agenda.reindex`` computes from the stored texts.

On SQLite and PostgreSQL (one server each); each example works in the agenda
of an agent of its own.  The default run keeps a few examples; the ``slow``
variant (CI) many more.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import icalendar
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from booking import agenda
from storage.database import Database
from storage.schema import agenda_events, agenda_occurrences
from tests.conftest import ADMIN_PASSWORD, Server
from tests.dates import working_days, working_monday
from tests.ics import PARIS_VTIMEZONE
from tests.protocol.office import ok

API = "/api/v1"
PARIS = ZoneInfo("Europe/Paris")
PASSWORD = "property-pass-1"
ICS = {"Content-Type": "text/calendar"}
WEEKDAYS = ["MO", "TU", "WE", "TH", "FR"]
SERIAL = itertools.count()
# The stored horizon moves with the clock: occurrences are compared up to a
# day before the earlier of the two horizons.
HORIZON_SLACK = 86_400


@dataclass
class World:
    server: Server
    org: int
    lieux: list[int]
    # motif id -> (location type, duration in minutes)
    motifs: dict[int, tuple[str, int]]
    usagers: list[int]
    days: list[date]  # the working days of three ordinary weeks


@pytest.fixture(scope="module")
def world(module_server: Server) -> Iterator[World]:
    with httpx.Client(base_url=module_server.url + API, auth=("admin", ADMIN_PASSWORD)) as admin:
        org = ok(admin.get("/me"))["organisations"][0]["id"]
        base = f"/organisations/{org}"
        service = ok(admin.post(f"{base}/services", json={"name": "PMI"}), 201)["id"]
        lieux = [
            ok(admin.post(f"{base}/lieux", json={"name": name, "address": "1 rue Basse"}), 201)[
                "id"
            ]
            for name in ("Centre", "Annexe")
        ]
        motifs = {}
        for name, kind, minutes in (
            ("Consultation", "public_office", 30),
            ("Appel", "phone", 20),
            ("Visite", "home", 45),
        ):
            fields = {
                "name": name,
                "service_id": service,
                "location_type": kind,
                "duration_minutes": minutes,
            }
            motifs[ok(admin.post(f"{base}/motifs", json=fields), 201)["id"]] = (kind, minutes)
        usagers = [
            ok(
                admin.post(
                    f"{base}/usagers",
                    json={"first_name": f"Usager{n}", "last_name": "Test", "postcode": "75011"},
                ),
                201,
            )["id"]
            for n in range(3)
        ]
    first = working_monday(3, weeks=3)
    days = [d for d in working_days(first, 15) if d < first + timedelta(weeks=3)]
    yield World(module_server, org, lieux, motifs, usagers, days)


# -- what is written -------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One write: a plage, an absence or an RDV, by ``path`` (api or caldav)."""

    kind: str  # plage / absence / rdv
    path: str
    day: int  # index in the first week's days
    start: tuple[int, int]  # local hour, minute
    minutes: int | None  # None: an RDV of the motif's duration
    motif_ids: tuple[int, ...] = ()
    lieu: int | None = None
    usagers: tuple[int, ...] = ()
    weekly: bool = False
    title: str = ""


@dataclass
class Expected:
    kind: str
    start: datetime
    end: datetime
    motif_ids: list[int] = field(default_factory=list)
    lieu: int | None = None
    usagers: list[int] = field(default_factory=list)
    weekly: bool = False


AGENDA = {"plage": "plages", "absence": "indisponibilites", "rdv": "rdv"}
TITLES = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=30)


def _entries(world: World) -> st.SearchStrategy[Entry]:
    motif_ids = sorted(world.motifs)
    office = [m for m in motif_ids if world.motifs[m][0] == "public_office"]
    day = st.integers(0, 4)
    path = st.sampled_from(["api", "caldav"])
    quarter = st.tuples(st.integers(8, 16), st.sampled_from([0, 15, 30, 45]))

    @st.composite
    def plage(draw: st.DrawFn) -> Entry:
        via = draw(path)
        chosen = draw(st.lists(st.sampled_from(motif_ids), min_size=1 if via == "api" else 0,
                               max_size=3, unique=True))  # fmt: skip
        needs_lieu = any(m in office for m in chosen) or not chosen
        lieu = draw(st.sampled_from(world.lieux) if needs_lieu else st.none())
        return Entry("plage", via, draw(day), (draw(st.integers(8, 15)), 0),
                     60 * draw(st.integers(1, 3)), tuple(chosen), lieu,
                     weekly=draw(st.booleans()), title=draw(TITLES))  # fmt: skip

    @st.composite
    def absence(draw: st.DrawFn) -> Entry:
        return Entry("absence", draw(path), draw(day), draw(quarter),
                     30 * draw(st.integers(1, 4)), weekly=draw(st.booleans()),
                     title=draw(TITLES))  # fmt: skip

    @st.composite
    def rdv(draw: st.DrawFn) -> Entry:
        motif = draw(st.sampled_from(motif_ids))
        lieu = draw(st.sampled_from(world.lieux)) if motif in office else None
        minutes = draw(st.none() | st.integers(1, 18).map(lambda n: 5 * n))
        hour, minute = draw(st.tuples(st.integers(8, 17), st.integers(0, 11).map(lambda n: 5 * n)))
        usagers = draw(st.lists(st.sampled_from(world.usagers), max_size=3, unique=True))
        return Entry("rdv", draw(path), draw(day), (hour, minute), minutes, (motif,), lieu,
                     tuple(usagers))  # fmt: skip

    return st.one_of(plage(), absence(), rdv())


# -- writing by both paths -----------------------------------------------------------------


@dataclass
class Agent:
    login: str
    id: int
    api: httpx.Client
    dav: httpx.Client
    dav_base: str

    def url(self, agenda_name: str, uid: str) -> str:
        return f"{self.dav_base}{self.login}/{agenda_name}/{uid}.ics"


def _new_agent(world: World) -> Agent:
    login = f"prop{next(SERIAL)}-{world.server.url.rsplit(':', 1)[1]}"
    with httpx.Client(base_url=world.server.url + API, auth=("admin", ADMIN_PASSWORD)) as admin:
        fields = {"login": login, "services": ["PMI"], "password": PASSWORD}
        agent_id = ok(admin.post(f"/organisations/{world.org}/agents", json=fields), 201)["id"]
    auth = (login, PASSWORD)
    return Agent(
        login,
        agent_id,
        httpx.Client(base_url=world.server.url + API, auth=auth, timeout=30),
        httpx.Client(auth=auth, timeout=30),
        world.server.dav,
    )


def _times(world: World, entry: Entry) -> tuple[datetime, datetime]:
    day = world.days[entry.day]
    start = datetime(day.year, day.month, day.day, *entry.start, tzinfo=PARIS)
    minutes = entry.minutes
    if minutes is None:
        minutes = world.motifs[entry.motif_ids[0]][1]
    return start, start + timedelta(minutes=minutes)


def _until(world: World, entry: Entry) -> str:
    return str(world.days[entry.day] + timedelta(days=14))


def _write_api(world: World, agent: Agent, entry: Entry) -> tuple[int, str | None]:
    start, end = _times(world, entry)
    weekly = {"frequency": "weekly", "weekdays": [WEEKDAYS[start.weekday()]]}
    if entry.kind == "plage":
        body: dict = {
            "motif_ids": list(entry.motif_ids),
            "lieu_id": entry.lieu,
            "first_day": str(start.date()),
            "start_time": f"{start:%H:%M}",
            "end_time": f"{end:%H:%M}",
            "title": entry.title,
        }
    elif entry.kind == "absence":
        body = {"starts_at": start.isoformat(), "ends_at": end.isoformat(), "title": entry.title}
    else:
        body = {
            "agent_id": agent.id,
            "motif_id": entry.motif_ids[0],
            "lieu_id": entry.lieu,
            "starts_at": start.isoformat(),
            "usager_ids": list(entry.usagers),
        }
        if entry.minutes is not None:
            body["duration_in_min"] = entry.minutes
        answer = agent.api.post("/rdvs", json=body)
        return answer.status_code, answer.json().get("id")
    if entry.weekly:
        body |= {"recurrence": weekly, "until": _until(world, entry)}
    answer = agent.api.post(f"/agents/{agent.id}/{AGENDA[entry.kind]}", json=body)
    return answer.status_code, answer.json().get("id")


def _ics(world: World, entry: Entry, uid: str) -> str:
    start, end = _times(world, entry)
    lines = [
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//property//EN",
        PARIS_VTIMEZONE.rstrip("\r\n"), "BEGIN:VEVENT", f"UID:{uid}",
        "DTSTAMP:20260101T000000Z",
        f"DTSTART;TZID=Europe/Paris:{start:%Y%m%dT%H%M%S}",
        f"DTEND;TZID=Europe/Paris:{end:%Y%m%dT%H%M%S}",
        "SUMMARY:" + icalendar.vText(entry.title or "Entrée").to_ical().decode(),
    ]  # fmt: skip
    if entry.weekly:
        lines.append("RRULE:FREQ=WEEKLY;COUNT=3")
    if entry.kind == "plage":
        lines.append("TRANSP:TRANSPARENT")
    if entry.motif_ids:
        lines.append("X-CALSERVER-MOTIF:" + ",".join(map(str, entry.motif_ids)))
    if entry.lieu is not None:
        lines.append(f"X-CALSERVER-LIEU:{entry.lieu}")
    for usager in entry.usagers:
        lines.append(f"X-CALSERVER-USAGER:{usager}")
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return "\r\n".join(lines) + "\r\n"


def _write_caldav(world: World, agent: Agent, entry: Entry, n: int) -> tuple[int, str | None]:
    uid = f"{agent.login}-{n}"
    url = agent.url(AGENDA[entry.kind], uid)
    answer = agent.dav.put(url, content=_ics(world, entry, uid).encode(), headers=ICS)
    return answer.status_code, uid


ACCEPTED = {"api": (201,), "caldav": (201,)}
REFUSED = {"api": (409, 422), "caldav": (403,)}


def _write(world: World, agent: Agent, entries: list[Entry]) -> dict[str, Expected]:
    expected: dict[str, Expected] = {}
    for n, entry in enumerate(entries):
        if entry.path == "api":
            status, uid = _write_api(world, agent, entry)
        else:
            status, uid = _write_caldav(world, agent, entry, n)
        assert status in ACCEPTED[entry.path] + REFUSED[entry.path], (entry, status)
        if status in ACCEPTED[entry.path]:
            assert uid is not None
            start, end = _times(world, entry)
            expected[uid] = Expected(
                entry.kind, start, end, list(entry.motif_ids), entry.lieu,
                list(entry.usagers), entry.weekly,
            )  # fmt: skip
    # A calendar client writes back what it read, unchanged (a sync round trip).
    for uid, wanted in expected.items():
        url = agent.url(AGENDA[wanted.kind], uid)
        read = agent.dav.get(url)
        assert read.status_code == 200
        back = agent.dav.put(url, content=read.content, headers=ICS)
        assert back.status_code in (201, 204), back.text
    return expected


# -- reading back by both paths --------------------------------------------------------------


def _dav_view(agent: Agent, uid: str, wanted: Expected) -> Expected:
    text = agent.dav.get(agent.url(AGENDA[wanted.kind], uid)).text
    (event,) = icalendar.Calendar.from_ical(text).walk("VEVENT")
    start = event["DTSTART"].dt
    end = event["DTEND"].dt if "DTEND" in event else start + event["DURATION"].dt

    def ints(name: str) -> list[int]:
        values = event.get(name, [])
        values = values if isinstance(values, list) else [values]
        return [int(part) for value in values for part in str(value).split(",") if part]

    lieu = ints("X-CALSERVER-LIEU")
    return Expected(
        wanted.kind, start, end, ints("X-CALSERVER-MOTIF"), lieu[0] if lieu else None,
        ints("X-CALSERVER-USAGER"), "RRULE" in event,
    )  # fmt: skip


def _api_views(agent: Agent) -> dict[str, Expected]:
    found: dict[str, Expected] = {}
    for kind in ("plage", "absence"):
        for entry in ok(agent.api.get(f"/agents/{agent.id}/{AGENDA[kind]}")):
            found[entry["id"]] = Expected(
                kind,
                datetime.fromisoformat(entry["starts_at"]),
                datetime.fromisoformat(entry["ends_at"]),
                entry["motif_ids"],
                entry["lieu_id"],
                [],
                entry["recurrence"] is not None,
            )
    for rdv in ok(agent.api.get(f"/agents/{agent.id}/rdvs")):
        found[rdv["id"]] = Expected(
            "rdv",
            datetime.fromisoformat(rdv["starts_at"]),
            datetime.fromisoformat(rdv["ends_at"]),
            [rdv["motif_id"]],
            rdv["lieu_id"],
            rdv["usager_ids"],
        )
    return found


def _index_snapshot(conn) -> tuple[dict, set]:  # type: ignore[no-untyped-def]
    events = {row.item_id: row._asdict() for row in conn.execute(select(agenda_events))}
    occurrences = {
        (r.item_id, r.agent_id, r.kind, r.r_start, r.r_end)
        for r in conn.execute(select(agenda_occurrences))
    }
    return events, occurrences


class _Rollback(Exception):
    pass


def _index_equals_fresh_reindex(world: World) -> None:
    db = Database(world.server.database_url)
    try:
        with db.transaction(write=True) as conn:
            stored_events, stored_occurrences = _index_snapshot(conn)
            agenda.reindex(conn, everything=True)
            fresh_events, fresh_occurrences = _index_snapshot(conn)
            raise _Rollback  # compare only; leave the server's index as it is
    except _Rollback:
        pass
    finally:
        db.dispose()
    assert stored_events.keys() == fresh_events.keys()
    horizon = {}
    for item_id, stored in stored_events.items():
        fresh = fresh_events[item_id]
        horizon[item_id] = min(stored["expanded_until"], fresh["expanded_until"]) - HORIZON_SLACK
        assert abs(stored.pop("expanded_until") - fresh.pop("expanded_until")) < 3600, item_id
        assert stored == fresh
    cut = {o for o in stored_occurrences ^ fresh_occurrences if o[3] < horizon[o[0]]}
    assert not cut, sorted(cut)[:5]


def _round_trip(world: World, entries: list[Entry]) -> None:
    agent = _new_agent(world)
    try:
        background = {
            "motif_ids": sorted(world.motifs),
            "lieu_id": world.lieux[0],
            "first_day": str(world.days[0]),
            "start_time": "08:00",
            "end_time": "18:00",
            "recurrence": {"frequency": "weekly", "weekdays": WEEKDAYS},
            "until": str(world.days[-1]),
        }
        background_id = ok(agent.api.post(f"/agents/{agent.id}/plages", json=background), 201)["id"]
        expected = _write(world, agent, entries)
        from_api = _api_views(agent)
        from_api.pop(background_id)
        assert from_api == expected
        for uid, wanted in expected.items():
            assert _dav_view(agent, uid, wanted) == wanted, uid
    finally:
        agent.api.close()
        agent.dav.close()
    _index_equals_fresh_reindex(world)


# No shrinking: each example writes over HTTP; the failing one is printed as found.
PROFILE = {
    "deadline": None,
    "suppress_health_check": list(HealthCheck),
    "phases": [Phase.explicit, Phase.generate],
}


@settings(max_examples=5, **PROFILE)
@given(data=st.data())
def test_writes_by_both_paths_read_back_alike_and_index_as_reindexed(
    world: World, data: st.DataObject
) -> None:
    _round_trip(world, data.draw(st.lists(_entries(world), min_size=1, max_size=6)))


@pytest.mark.slow
@settings(max_examples=30, **PROFILE)
@given(data=st.data())
def test_many_writes_by_both_paths_read_back_alike_and_index_as_reindexed(
    world: World, data: st.DataObject
) -> None:
    _round_trip(world, data.draw(st.lists(_entries(world), min_size=4, max_size=14)))
