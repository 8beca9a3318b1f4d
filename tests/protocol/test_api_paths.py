"""API paths over real HTTP that no other test walks: absences (one-off,
multi-day, recurring) removing slots, the organisation's settings
(overbooking, holiday zone, Pentecost Monday), RDV PATCH of status and lieu,
and the créneaux filters ``public``, ``lieu`` and ``agents``.

One server per database for the module: each test has its own agents (the
organisation settings are put back when a test changes them).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from dateutil.easter import easter

from tests.conftest import ADMIN_PASSWORD, Server
from tests.dates import at, monday, working_days

API = "/api/v1"
WEEKDAYS = ["MO", "TU", "WE", "TH", "FR"]


def _ok(answer: httpx.Response, status: int = 200) -> dict | list:
    assert answer.status_code == status, answer.text
    return answer.json()


@dataclass
class Paths:
    server: Server
    admin: httpx.Client
    org: int
    service: int
    lieux: list[int]
    motif: int

    def agent(self, login: str, lieu: int | None = None, first: date | None = None) -> int:
        """A PMI agent with a weekday plage 09:00-12:00 at ``lieu`` (the
        first lieu by default) from ``first`` (two weeks ahead) on."""
        new = {"login": login, "services": ["PMI"], "password": f"{login}-password"}
        agent = _ok(self.admin.post(f"/organisations/{self.org}/agents", json=new), 201)["id"]
        self.plage(agent, lieu or self.lieux[0], first or monday(2), WEEKDAYS)
        return agent

    def plage(self, agent: int, lieu: int, first: date, weekdays: list[str] | None) -> None:
        plage = {
            "motif_ids": [self.motif],
            "lieu_id": lieu,
            "first_day": first.isoformat(),
            "start_time": "09:00",
            "end_time": "12:00",
        }
        if weekdays:
            plage["recurrence"] = {"frequency": "weekly", "weekdays": weekdays}
        _ok(self.admin.post(f"/agents/{agent}/plages", json=plage), 201)

    def slots(self, day: date, last: date | None = None, **params: object) -> list[dict]:
        query = {"motif": self.motif, "from": str(day), "to": str(last or day), **params}
        return _ok(self.admin.get("/creneaux", params=query))["creneaux"]

    def times(self, agent: int, day: date) -> list[str]:
        """The slots' start times (HH:MM) of one agent on one day."""
        return [c["starts_at"][11:16] for c in self.slots(day, agents=agent)]

    def book(self, agent: int, moment: datetime, lieu: int | None = None) -> httpx.Response:
        rdv = {
            "agent_id": agent,
            "motif_id": self.motif,
            "lieu_id": lieu or self.lieux[0],
            "starts_at": moment.isoformat(),
        }
        return self.admin.post("/rdvs", json=rdv)

    @contextmanager
    def organisation(self, **settings: object) -> Iterator[dict]:
        """The organisation with ``settings`` for the block, put back after."""
        path = f"/organisations/{self.org}"
        before = _ok(self.admin.get(path))
        try:
            yield _ok(self.admin.patch(path, json=settings))
        finally:
            _ok(self.admin.patch(path, json={k: before[k] for k in settings}))


@pytest.fixture(scope="module")
def paths(module_server: Server) -> Iterator[Paths]:
    server = module_server
    with httpx.Client(
        base_url=server.url + API, auth=("admin", ADMIN_PASSWORD), timeout=30
    ) as admin:
        org = _ok(admin.get("/me"))["organisations"][0]["id"]
        service = _ok(admin.post(f"/organisations/{org}/services", json={"name": "PMI"}), 201)
        lieux = [
            _ok(
                admin.post(
                    f"/organisations/{org}/lieux",
                    json={"name": f"Lieu {n}", "address": f"{n} rue de la Paix, 75002 Paris"},
                ),
                201,
            )["id"]
            for n in (1, 2, 3)
        ]
        motif = {"name": "Consultation", "service_id": service["id"], "bookable_by": "everyone"}
        motif_id = _ok(admin.post(f"/organisations/{org}/motifs", json=motif), 201)["id"]
        yield Paths(server, admin, org, service["id"], lieux, motif_id)


# -- absences ------------------------------------------------------------------------


def test_a_one_off_absence_removes_its_slots(paths: Paths) -> None:
    agent = paths.agent("one-off")
    day = working_days(monday(3), 1)[0]
    assert paths.times(agent, day) == ["09:00", "09:30", "10:00", "10:30", "11:00", "11:30"]
    absence = {"starts_at": at(day, 10).isoformat(), "ends_at": at(day, 11).isoformat()}
    created = _ok(paths.admin.post(f"/agents/{agent}/indisponibilites", json=absence), 201)
    assert paths.times(agent, day) == ["09:00", "09:30", "11:00", "11:30"]
    listed = _ok(paths.admin.get(f"/agents/{agent}/indisponibilites"))
    assert [a["id"] for a in listed] == [created["id"]]
    refused = paths.book(agent, at(day, 10))
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "agent-unavailable"
    deleted = paths.admin.delete(f"/agents/{agent}/indisponibilites/{created['id']}")
    assert deleted.status_code == 204
    assert "10:00" in paths.times(agent, day)


def test_a_multi_day_absence_takes_whole_days(paths: Paths) -> None:
    agent = paths.agent("multi-day")
    before, first, second, after = working_days(monday(3), 4)
    absence = {"starts_at": str(first), "ends_at": str(second), "title": "Congés"}
    _ok(paths.admin.post(f"/agents/{agent}/indisponibilites", json=absence), 201)
    assert paths.times(agent, first) == [] and paths.times(agent, second) == []
    assert len(paths.times(agent, before)) == 6 and len(paths.times(agent, after)) == 6


def test_a_recurring_absence_repeats_until_its_last_day(paths: Paths) -> None:
    agent = paths.agent("recurring")
    wednesday = monday(3) + timedelta(days=2)
    weeks = [wednesday + timedelta(weeks=n) for n in range(4)]
    absence = {
        "starts_at": at(wednesday, 9).isoformat(),
        "ends_at": at(wednesday, 10).isoformat(),
        "recurrence": {"frequency": "weekly", "weekdays": ["WE"], "every_weeks": 1},
        "until": str(weeks[2]),
    }
    listed = _ok(paths.admin.post(f"/agents/{agent}/indisponibilites", json=absence), 201)
    assert "FREQ=WEEKLY" in listed["recurrence"]
    off = {d: paths.times(agent, d)[:2] for d in weeks if d in working_days(d, 1)}
    for day, first_two in off.items():
        expected = ["10:00", "10:30"] if day <= weeks[2] else ["09:00", "09:30"]
        assert first_two == expected, day
    thursday = wednesday + timedelta(days=1)
    if thursday in working_days(thursday, 1):
        assert paths.times(agent, thursday)[0] == "09:00"


# -- organisation settings -------------------------------------------------------------


def test_overbooking_lets_an_agent_overlap_only_while_allowed(paths: Paths) -> None:
    agent = paths.agent("overbooked")
    day = working_days(monday(3), 1)[0]
    _ok(paths.book(agent, at(day, 9)), 201)
    refused = paths.book(agent, at(day, 9))
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "slot-unavailable"
    with paths.organisation(overbooking_allowed=True) as organisation:
        assert organisation["overbooking_allowed"] is True
        _ok(paths.book(agent, at(day, 9)), 201)
    assert paths.book(agent, at(day, 9)).status_code == 409
    listed = _ok(
        paths.admin.get(f"/agents/{agent}/rdvs", params={"from": str(day), "to": str(day)})
    )
    assert len(listed) == 2


def _after_easter(days: int, after: date) -> date:
    """Easter Sunday plus ``days`` in the first year where that falls after
    ``after`` (Good Friday -2, Pentecost Monday +50), from Easter's own rule."""
    year = after.year
    while easter(year) + timedelta(days=days) <= after:
        year += 1
    return easter(year) + timedelta(days=days)


def test_holiday_zone_57_closes_good_friday(paths: Paths) -> None:
    good_friday = _after_easter(-2, monday(2))
    agent = paths.agent("moselle", first=good_friday - timedelta(days=4))
    assert len(paths.times(agent, good_friday)) == 6  # worked in metropolitan France
    with paths.organisation(holiday_zone="57") as organisation:
        assert organisation["holiday_zone"] == "57"
        assert paths.times(agent, good_friday) == []
        refused = paths.book(agent, at(good_friday, 9))
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "holiday"
    assert len(paths.times(agent, good_friday)) == 6


def test_pentecost_monday_is_worked_only_when_the_organisation_says_so(paths: Paths) -> None:
    whit_monday = _after_easter(50, monday(2))
    agent = paths.agent("pentecote", first=whit_monday)
    assert paths.times(agent, whit_monday) == []
    with paths.organisation(pentecost_worked=True):
        assert len(paths.times(agent, whit_monday)) == 6
        _ok(paths.book(agent, at(whit_monday, 9)), 201)
    assert paths.times(agent, whit_monday) == []


# -- RDV PATCH ----------------------------------------------------------------------


def test_patch_sets_the_status_and_a_cancelled_status_frees_the_slot(paths: Paths) -> None:
    agent = paths.agent("statuses")
    day = working_days(monday(3), 1)[0]
    rdv = _ok(paths.book(agent, at(day, 9)), 201)
    url = f"/agents/{agent}/rdvs/{rdv['id']}"
    seen = _ok(paths.admin.patch(url, json={"status": "seen"}))
    assert seen["status"] == "seen" and seen["sequence"] == rdv["sequence"] + 1
    assert _ok(paths.admin.get(url))["status"] == "seen"
    assert "09:00" not in paths.times(agent, day)
    _ok(paths.admin.patch(url, json={"status": "excused"}))
    assert paths.times(agent, day)[0] == "09:00"
    text = httpx.get(
        paths.server.dav + f"statuses/rdv/{rdv['id']}.ics", auth=("admin", ADMIN_PASSWORD)
    ).text
    assert "X-CALSERVER-STATUS:excused" in text and "STATUS:CANCELLED" in text
    refused = paths.admin.patch(url, json={"status": "lost"})
    assert refused.status_code == 422
    assert _ok(paths.admin.get(url))["status"] == "excused"


def test_patch_moves_an_rdv_to_another_lieu_with_a_plage_there(paths: Paths) -> None:
    one, two, three = paths.lieux
    agent = paths.agent("relocated")
    day = working_days(monday(3), 1)[0]
    paths.plage(agent, two, day, None)  # the same morning at the second lieu
    rdv = _ok(paths.book(agent, at(day, 9), lieu=one), 201)
    url = f"/agents/{agent}/rdvs/{rdv['id']}"
    moved = _ok(paths.admin.patch(url, json={"lieu_id": two}))
    assert moved["lieu_id"] == two and moved["starts_at"] == rdv["starts_at"]
    text = httpx.get(
        paths.server.dav + f"relocated/rdv/{rdv['id']}.ics", auth=("admin", ADMIN_PASSWORD)
    ).text
    assert f"X-CALSERVER-LIEU:{two}" in text and "Lieu 2" in text
    refused = paths.admin.patch(url, json={"lieu_id": three})  # no plage there
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "outside-plage"
    assert _ok(paths.admin.get(url)) == moved


# -- créneaux filters ----------------------------------------------------------------


def test_lieu_and_agents_filters(paths: Paths) -> None:
    day = working_days(monday(4), 1)[0]
    first = paths.agent("filter-a", first=day)
    second = paths.agent("filter-b", lieu=paths.lieux[1], first=day)
    both = paths.slots(day, agents=f"{first},{second}")
    assert {c["agent_id"] for c in both} == {first, second}
    only_second = paths.slots(day, agents=second)
    assert only_second and {c["agent_id"] for c in only_second} == {second}
    at_lieu_two = paths.slots(day, agents=f"{first},{second}", lieu=paths.lieux[1])
    assert at_lieu_two and {c["lieu_id"] for c in at_lieu_two} == {paths.lieux[1]}
    assert {c["agent_id"] for c in at_lieu_two} == {second}
    assert paths.slots(day, agents=first, lieu=paths.lieux[2]) == []


def test_public_search_keeps_the_motifs_delays(paths: Paths) -> None:
    agent = paths.agent("delays")
    low, high = 15 * 24 * 60, 25 * 24 * 60  # 15 to 25 days ahead
    path = f"/organisations/{paths.org}/motifs/{paths.motif}"
    before = _ok(paths.admin.get(path))
    try:
        _ok(paths.admin.patch(path, json={"min_delay_minutes": low, "max_delay_minutes": high}))
        first, last = monday(2), monday(2) + timedelta(days=27)
        every = paths.slots(first, last, agents=agent)
        public = paths.slots(first, last, agents=agent, public="true")
        now = datetime.now(UTC)
        starts = [datetime.fromisoformat(c["starts_at"]) for c in public]
        assert public and len(public) < len(every)
        assert all(
            now + timedelta(minutes=low) <= s <= now + timedelta(minutes=high) for s in starts
        )
        earliest = now + timedelta(minutes=low)
        assert any(datetime.fromisoformat(c["starts_at"]) < earliest for c in every)
    finally:
        keep = ("min_delay_minutes", "max_delay_minutes")
        _ok(paths.admin.patch(path, json={k: before[k] for k in keep}))


# -- unique names ----------------------------------------------------------------------


def test_a_second_motif_of_the_same_name_and_type_is_409_and_nothing_is_written(
    paths: Paths,
) -> None:
    motifs_url = f"/organisations/{paths.org}/motifs"
    before = _ok(paths.admin.get(motifs_url))
    twin = {"name": "Consultation", "service_id": paths.service}
    refused = paths.admin.post(motifs_url, json=twin)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "exists"
    assert "motif" in refused.json()["error"]["message"]
    (first,) = [m for m in before if m["name"] == "Consultation"]
    assert refused.json()["error"]["existing_id"] == first["id"]
    assert _ok(paths.admin.get(motifs_url)) == before
    # The same name by phone is another motif; renaming it onto the first is refused too.
    by_phone = _ok(paths.admin.post(motifs_url, json={**twin, "location_type": "phone"}), 201)
    other = _ok(paths.admin.post(motifs_url, json={**twin, "name": "Suivi"}), 201)
    renamed = paths.admin.patch(f"{motifs_url}/{other['id']}", json={"name": "Consultation"})
    assert renamed.status_code == 409, renamed.text
    assert renamed.json()["error"]["existing_id"] == first["id"]
    assert _ok(paths.admin.get(f"{motifs_url}/{other['id']}"))["name"] == "Suivi"
    assert by_phone["name"] == "Consultation"
