"""The admin API sets an organisation up from nothing, over real HTTP, on
SQLite and PostgreSQL: an operator creates it and its first admin, who makes
services, lieux, motifs and agents; agents in several organisations, their
roles and services; the last admin kept; a deactivated agent refused over
CalDAV and the API while its history stays; usagers found by the first
letters of their names with their history; RDV lists filtered, exported as
CSV and XLSX (parsed back, row for row) and counted.

One server per database for the module; each test makes its own
organisation (``Org``), so tests keep out of each other's way.
"""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
import openpyxl
import pytest

from tests.conftest import ADMIN_PASSWORD, Server
from tests.dates import monday, working_days

API = "/api/v1"
PARIS = ZoneInfo("Europe/Paris")
WEEKDAYS = ["MO", "TU", "WE", "TH", "FR"]
HEADERS = [
    "Date", "Début", "Fin", "Durée (min)", "Statut", "Motif", "Service", "Lieu", "Agent",
    "Usagers", "Identifiant",
]  # fmt: skip
LABELS = {
    "unknown": "À venir",
    "seen": "Présent",
    "noshow": "Absent non excusé",
    "excused": "Annulé par l'usager",
    "revoked": "Annulé par le service",
}


def ok(answer: httpx.Response, status: int = 200) -> dict:
    assert answer.status_code == status, answer.text
    return answer.json()


def refused(answer: httpx.Response, status: int, code: str | None = None) -> dict:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    if code is not None:
        assert error["code"] == code, error
    return error


@pytest.fixture(scope="module")
def operator(module_server: Server) -> Iterator[httpx.Client]:
    """The first admin of a new installation, an operator of the server."""
    with httpx.Client(base_url=module_server.url + API, auth=("admin", ADMIN_PASSWORD)) as c:
        yield c


@dataclass
class Org:
    """An organisation made through the API by the operator, with its admin
    ``boss``; agents, services, lieux and motifs added as a test needs."""

    server: Server
    operator: httpx.Client
    id: int
    suffix: str
    boss_id: int
    clients: dict[str, httpx.Client] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return f"/organisations/{self.id}"

    def login(self, name: str) -> str:
        return f"{name}-{self.suffix}"

    def password(self, name: str) -> str:
        return f"{name}-pass-{self.suffix}"

    def client(self, name: str) -> httpx.Client:
        if name not in self.clients:
            auth = (self.login(name), self.password(name))
            self.clients[name] = httpx.Client(base_url=self.server.url + API, auth=auth)
        return self.clients[name]

    @property
    def boss(self) -> httpx.Client:
        return self.client("boss")

    def agent(self, name: str, role: str = "basic", services: tuple[str, ...] = ()) -> int:
        body = {"login": self.login(name), "password": self.password(name), "role": role,
                "services": list(services), "display_name": name.capitalize()}  # fmt: skip
        return ok(self.boss.post(f"{self.path}/agents", json=body), 201)["id"]

    def service(self, name: str) -> int:
        found = {s["name"]: s["id"] for s in ok(self.boss.get(f"{self.path}/services"))}
        if name in found:
            return found[name]
        return ok(self.boss.post(f"{self.path}/services", json={"name": name}), 201)["id"]

    def lieu(self, name: str) -> int:
        body = {"name": name, "address": f"1 rue {name}, 75001 Paris"}
        return ok(self.boss.post(f"{self.path}/lieux", json=body), 201)["id"]

    def motif(self, name: str, service: str, location_type: str = "public_office") -> int:
        body = {"name": name, "service_id": self.service(service),
                "location_type": location_type, "duration_minutes": 30}  # fmt: skip
        return ok(self.boss.post(f"{self.path}/motifs", json=body), 201)["id"]

    def usager(self, first: str, last: str) -> int:
        body = {"first_name": first, "last_name": last}
        return ok(self.boss.post(f"{self.path}/usagers", json=body), 201)["id"]

    def plage(self, name: str, agent: int, motifs: list[int], lieu: int, first: date) -> None:
        body = {"motif_ids": motifs, "lieu_id": lieu, "first_day": first.isoformat(),
                "start_time": "08:00", "end_time": "18:00",
                "recurrence": {"frequency": "weekly", "weekdays": WEEKDAYS}}  # fmt: skip
        ok(self.client(name).post(f"/agents/{agent}/plages", json=body), 201)

    def book(
        self, name: str, agent: int, motif: int, lieu: int | None, start: datetime,
        usagers: list[int], status: str = "unknown",
    ) -> dict:  # fmt: skip
        body = {"agent_id": agent, "motif_id": motif, "lieu_id": lieu,
                "starts_at": start.isoformat(), "usager_ids": usagers,
                "notify_usagers": False}  # fmt: skip
        rdv = ok(self.client(name).post("/rdvs", json=body), 201)
        if status != "unknown":
            url = f"/agents/{agent}/rdvs/{rdv['id']}"
            rdv = ok(self.client(name).patch(url, json={"status": status}))
        return rdv

    def close(self) -> None:
        for c in self.clients.values():
            c.close()


def new_org(server: Server, operator: httpx.Client, tz: str = "Europe/Paris") -> Org:
    suffix = secrets.token_hex(3)
    created = ok(
        operator.post("/organisations", json={"name": f"CCAS {suffix}", "slug": f"ccas-{suffix}",
                                              "time_zone": tz}),
        201,
    )  # fmt: skip
    boss = {"login": f"boss-{suffix}", "password": f"boss-pass-{suffix}", "role": "admin"}
    boss_id = ok(operator.post(f"/organisations/{created['id']}/agents", json=boss), 201)["id"]
    return Org(server, operator, created["id"], suffix, boss_id)


@pytest.fixture
def org(module_server: Server, operator: httpx.Client) -> Iterator[Org]:
    made = new_org(module_server, operator)
    yield made
    made.close()


# -- organisations, services, lieux --------------------------------------------------


def test_an_operator_sets_an_organisation_up_from_nothing(
    module_server: Server, operator: httpx.Client, org: Org
) -> None:
    me = ok(operator.get("/me"))
    assert me["operator"] is True
    assert ok(org.boss.get("/me"))["operator"] is False
    # The operator lists every organisation; the new admin, its own.
    assert org.id in [o["id"] for o in ok(operator.get("/organisations"))]
    assert [o["id"] for o in ok(org.boss.get("/organisations"))] == [org.id]
    # Only an operator creates one; a slug is one organisation's.
    body = {"name": "Autre", "slug": f"autre-{org.suffix}"}
    refused(org.boss.post("/organisations", json=body), 403, "forbidden")
    taken = refused(operator.post("/organisations", json={**body, "slug": f"ccas-{org.suffix}"}),
                    409, "exists")  # fmt: skip
    assert taken["existing_id"] == org.id
    refused(operator.post("/organisations", json={**body, "time_zone": "Mars/Olympus"}), 422)
    refused(operator.post("/organisations", json={**body, "slug": "Pas un slug"}), 422)
    overseas = ok(operator.post("/organisations", json={**body, "time_zone": "America/Cayenne",
                                                         "holiday_zone": "973"}), 201)  # fmt: skip
    assert (overseas["time_zone"], overseas["holiday_zone"]) == ("America/Cayenne", "973")
    # The new admin builds the organisation.
    accueil = org.service("Accueil")
    org.service("Social")
    lieu = org.lieu("Mairie")
    motif = org.motif("Premier accueil", "Accueil")
    alice = org.agent("alice", services=("Accueil",))
    members = {m["id"]: m for m in ok(org.boss.get(f"{org.path}/agents"))}
    assert members[alice]["service_ids"] == [accueil]
    assert members[alice]["active"] is True
    # Services renamed (a taken name is a 409) and disabled.
    renamed = ok(org.boss.patch(f"{org.path}/services/{accueil}", json={"name": "Accueil social"}))
    assert renamed == {"id": accueil, "organisation_id": org.id, "name": "Accueil social",
                       "secretariat": False, "enabled": True}  # fmt: skip
    made = ok(org.boss.patch(f"{org.path}/services/{accueil}", json={"secretariat": True}))
    assert made["secretariat"] is True
    assert ok(org.boss.patch(f"{org.path}/services/{accueil}", json={"secretariat": False}))[
        "secretariat"] is False  # fmt: skip
    refused(
        org.boss.patch(f"{org.path}/services/{accueil}", json={"name": "Social"}), 409, "exists"
    )
    refused(org.client("alice").patch(f"{org.path}/services/{accueil}", json={"enabled": False}),
            403)  # fmt: skip
    assert ok(org.boss.patch(f"{org.path}/services/{accueil}", json={"enabled": False}))[
        "enabled"] is False  # fmt: skip
    new_motif = {"name": "Autre", "service_id": accueil}
    refused(org.boss.post(f"{org.path}/motifs", json=new_motif), 422, "disabled-service")
    # Its existing motifs stay and may still change.
    ok(org.boss.patch(f"{org.path}/motifs/{motif}", json={"color": "#aabbcc"}))
    # Lieux renamed and disabled.
    lieu_url = f"{org.path}/lieux/{lieu}"
    assert (
        ok(org.boss.patch(lieu_url, json={"name": "Mairie centrale"}))["name"] == "Mairie centrale"
    )
    assert ok(org.boss.patch(lieu_url, json={"enabled": False}))["enabled"] is False
    # Another organisation's admin sees none of it.
    other = new_org(module_server, operator)
    try:
        refused(other.boss.get(org.path), 404)
        refused(other.boss.patch(f"{org.path}/services/{accueil}", json={"name": "X"}), 404)
        refused(other.boss.post(f"{org.path}/agents/{alice}/deactivate"), 404)
        refused(org.boss.patch(f"{other.path}/services/{other.service('S')}", json={"name": "Y"}),
                404)  # fmt: skip
    finally:
        other.close()


def test_an_agent_works_in_several_organisations(
    module_server: Server, operator: httpx.Client, org: Org
) -> None:
    social = org.service("Social")
    alice = org.agent("alice", services=("Accueil",))
    other = new_org(module_server, operator)
    try:
        pmi = other.service("PMI")
        add = {"login": org.login("alice"), "role": "basic", "service_ids": [pmi]}
        # The other organisation's admin does not administer alice's: nobody by that login.
        refused(other.boss.post(f"{other.path}/memberships", json=add), 422, "unknown-agent")
        refused(org.client("alice").post(f"{other.path}/memberships", json=add), 404)
        # The operator adds her; a second time is a 409 naming her.
        member = ok(operator.post(f"{other.path}/memberships", json=add), 201)
        assert (member["id"], member["role"], member["service_ids"]) == (alice, "basic", [pmi])
        assert refused(operator.post(f"{other.path}/memberships", json=add), 409)[
            "existing_id"] == alice  # fmt: skip
        orgs = ok(org.client("alice").get("/me"))["organisations"]
        assert sorted((o["id"], o["role"]) for o in orgs) == sorted(
            [(org.id, "basic"), (other.id, "basic")])  # fmt: skip
        # Her role and services change per organisation; the others stay.
        url = f"{org.path}/agents/{alice}/membership"
        changed = ok(org.boss.patch(url, json={"role": "admin", "service_ids": [social]}))
        assert (changed["role"], changed["service_ids"]) == ("admin", [social])
        in_other = {m["id"]: m for m in ok(other.boss.get(f"{other.path}/agents"))}[alice]
        assert in_other["role"] == "basic"
        assert pmi in in_other["service_ids"]
        refused(org.client("bob-nobody").patch(url, json={"role": "basic"}), 401)
        refused(other.boss.patch(url, json={"role": "basic"}), 404)
        refused(org.boss.patch(url, json={"service_ids": [pmi]}), 422, "unknown-service")
        refused(org.boss.patch(url, json={"role": "intervenant"}), 422)
        # Admin of both, alice adds an agent of hers to the other.
        bob = org.agent("bob", services=("Social",))
        add_bob = {"login": org.login("bob")}
        refused(org.client("alice").post(f"{other.path}/memberships", json=add_bob), 403)
        ok(other.boss.patch(f"{other.path}/agents/{alice}/membership", json={"role": "admin"}))
        added = ok(org.client("alice").post(f"{other.path}/memberships", json=add_bob), 201)
        assert (added["id"], added["role"], added["service_ids"]) == (bob, "basic", [])
        # Deactivating bob is for who administers both organisations: the other's
        # admin may not, alice may.
        refused(other.boss.post(f"{other.path}/agents/{bob}/deactivate"), 403, "forbidden")
        assert ok(org.client("alice").post(f"{other.path}/agents/{bob}/deactivate"))[
            "active"] is False  # fmt: skip
    finally:
        other.close()


def test_an_organisation_always_keeps_an_admin(org: Org) -> None:
    url = f"{org.path}/agents/{org.boss_id}"
    error = refused(org.boss.patch(f"{url}/membership", json={"role": "basic"}), 409, "last-admin")
    assert "last admin" in error["message"]
    refused(org.boss.post(f"{url}/deactivate"), 409, "last-admin")
    # The operator too is held to it.
    refused(org.operator.post(f"{url}/deactivate"), 409, "last-admin")
    assert ok(org.boss.get(f"{org.path}/agents"))[0]["role"] == "admin"
    second = org.agent("second", role="admin")
    assert ok(org.boss.patch(f"{url}/membership", json={"role": "basic"}))["role"] == "basic"
    # The second admin is now the last one, and basic agents change nothing.
    refused(org.client("second").post(f"{org.path}/agents/{second}/deactivate"), 409, "last-admin")
    refused(org.boss.post(f"{org.path}/agents/{second}/deactivate"), 403)


def test_a_deactivated_agent_is_refused_its_history_kept(module_server: Server, org: Org) -> None:
    alice = org.agent("alice", services=("Accueil",))
    bob = org.agent("bob", services=("Accueil",))
    lieu = org.lieu("Mairie")
    motif = org.motif("Accueil", "Accueil")
    first = monday(-2)
    for name, agent in (("alice", alice), ("bob", bob)):
        org.plage(name, agent, [motif], lieu, first)
    usager = org.usager("Jeanne", "Valjean")
    past_day = working_days(monday(-1), 1)[0]
    past = org.book("alice", alice, motif, lieu, datetime.combine(past_day, time(9), PARIS),
                    [usager], "seen")  # fmt: skip
    coming_day = working_days(monday(2), 1)[0]
    coming = org.book("alice", alice, motif, lieu, datetime.combine(coming_day, time(10), PARIS),
                      [usager])  # fmt: skip
    url = f"{org.path}/agents/{alice}"
    error = refused(org.boss.post(f"{url}/deactivate"), 409, "coming-rdvs")
    assert "1 RDV" in error["message"]
    ok(org.boss.delete(f"/agents/{alice}/rdvs/{coming['id']}"))
    dav_auth = (org.login("alice"), org.password("alice"))
    dav = f"{module_server.url}/dav/{org.login('alice')}/rdv/"
    assert httpx.request("PROPFIND", dav, auth=dav_auth, headers={"Depth": "1"}).status_code == 207
    deactivated = ok(org.boss.post(f"{url}/deactivate"))
    assert deactivated["active"] is False
    # No login, over the API or CalDAV.
    refused(org.client("alice").get("/me"), 401)
    assert httpx.request("PROPFIND", dav, auth=dav_auth, headers={"Depth": "1"}).status_code == 401
    # Her history stays, read-only for the admin; bob, her colleague, no longer sees it.
    boss_auth = (org.login("boss"), org.password("boss"))
    listing = httpx.request("PROPFIND", dav, auth=boss_auth, headers={"Depth": "1"})
    assert listing.status_code == 207 and quote(past["id"]) in listing.text
    put = httpx.put(f"{dav}new.ics", auth=boss_auth, content=_rdv_ics(motif, lieu, coming_day),
                    headers={"Content-Type": "text/calendar"})  # fmt: skip
    assert put.status_code == 403, put.text
    seen = ok(org.boss.get(f"/agents/{alice}/rdvs"))
    assert [r["id"] for r in seen] == [past["id"], coming["id"]]
    refused(org.boss.patch(f"/agents/{alice}/rdvs/{past['id']}", json={"status": "noshow"}), 403)
    refused(org.boss.post("/rdvs", json={"agent_id": alice, "motif_id": motif, "lieu_id": lieu,
                                         "starts_at": f"{coming_day}T11:00"}), 403)  # fmt: skip
    refused(org.client("bob").get(f"/agents/{alice}/rdvs"), 404)
    history = ok(org.boss.get(f"{org.path}/usagers/{usager}/rdvs"))
    assert [r["id"] for r in history["past"]] == [past["id"]]
    # No slot of hers is offered; bob's are.
    window = {"motif": motif, "from": coming_day.isoformat(), "to": coming_day.isoformat()}
    assert _offered(org, window) == {bob}
    # Reactivated, she logs in again.
    assert ok(org.boss.post(f"{url}/reactivate"))["active"] is True
    assert ok(org.client("alice").get("/me"))["id"] == alice
    assert _offered(org, window) == {alice, bob}


def _offered(org: Org, window: dict) -> set[int]:
    found = ok(org.boss.get("/creneaux", params=window))["creneaux"]
    return {agent for c in found for agent in c["agent_ids"]}


def _rdv_ics(motif: int, lieu: int, day: date) -> str:
    start = f"{day:%Y%m%d}T140000"
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//FR\r\nBEGIN:VEVENT\r\n"
        f"UID:deactivated-{secrets.token_hex(4)}\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART;TZID=Europe/Paris:{start}\r\nDTEND;TZID=Europe/Paris:{day:%Y%m%d}T143000\r\n"
        f"SUMMARY:RDV\r\nX-CALSERVER-MOTIF:{motif}\r\nX-CALSERVER-LIEU:{lieu}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


# -- usagers -------------------------------------------------------------------------


def test_usagers_are_found_by_the_first_letters_of_their_names(org: Org) -> None:
    ids = {
        "elodie": org.usager("Élodie", "Dupont"),
        "marc": org.usager("Marc", "Dupuis"),
        "anne": org.usager("Anne", "Martin-Durand"),
        "lea": org.usager("Léa", "D'Urso"),
        "paul": org.usager("Paul", "Bernard"),
    }

    def found(q: str) -> list[int]:
        return [u["id"] for u in ok(org.boss.get(f"{org.path}/usagers", params={"q": q}))]

    # By last name, by first name, accents and case ignored; words of a compound
    # name each count; every word typed must match; ordered by last name.
    assert found("du") == [ids["elodie"], ids["marc"], ids["anne"]]
    assert found("DUP") == [ids["elodie"], ids["marc"]]
    assert found("elo") == [ids["elodie"]]
    assert found("é d") == [ids["elodie"]]
    assert found("urs") == [ids["lea"]]
    assert found("mar dur") == [ids["anne"]]
    assert found("pont") == []  # first letters only
    assert found("%") == [] and found("_") == []
    refused(org.boss.get(f"{org.path}/usagers", params={"q": "  "}), 422)
    # Without q, every usager of the organisation; another's usagers are never found.
    assert len(ok(org.boss.get(f"{org.path}/usagers"))) == len(ids)
    # Renamed, found by the new name only.
    ok(org.boss.patch(f"{org.path}/usagers/{ids['paul']}", json={"last_name": "Zola"}))
    assert found("ber") == [] and found("zo") == [ids["paul"]]
    answer = ok(org.boss.get(f"{org.path}/usagers/{ids['paul']}"))
    assert "search_key" not in answer


def test_a_usagers_history_counts_its_rdvs_by_status(org: Org) -> None:
    alice = org.agent("alice", services=("Accueil",))
    carol = org.agent("carol", services=("Social",))
    lieu = org.lieu("Mairie")
    accueil = org.motif("Accueil", "Accueil")
    social = org.motif("Aide sociale", "Social")
    org.plage("alice", alice, [accueil], lieu, monday(-3))
    org.plage("carol", carol, [social], lieu, monday(-3))
    usager, other = org.usager("Jeanne", "Valjean"), org.usager("Cosette", "Fantine")
    past_days = working_days(monday(-2), 3)
    coming_days = working_days(monday(2), 2)

    def at(day: date, hour: int) -> datetime:
        return datetime.combine(day, time(hour), PARIS)

    made = [
        org.book("alice", alice, accueil, lieu, at(past_days[0], 9), [usager], "seen"),
        org.book("alice", alice, accueil, lieu, at(past_days[1], 9), [usager, other], "noshow"),
        org.book("carol", carol, social, lieu, at(past_days[2], 9), [usager], "excused"),
        org.book("alice", alice, accueil, lieu, at(coming_days[0], 9), [usager]),
        org.book("carol", carol, social, lieu, at(coming_days[1], 9), [usager], "revoked"),
        org.book("alice", alice, accueil, lieu, at(coming_days[1], 9), [other]),
    ]
    history = ok(org.boss.get(f"{org.path}/usagers/{usager}/rdvs"))
    assert [r["id"] for r in history["past"]] == [made[2]["id"], made[1]["id"], made[0]["id"]]
    assert [r["id"] for r in history["upcoming"]] == [made[3]["id"], made[4]["id"]]
    assert history["counts"] == {"unknown": 1, "seen": 1, "noshow": 1, "excused": 1,
                                 "revoked": 1}  # fmt: skip
    assert history["upcoming"][0]["starts_at"] == at(coming_days[0], 9).isoformat()
    # alice (basic, Accueil) sees only the RDVs of the agendas she may read.
    mine = ok(org.client("alice").get(f"{org.path}/usagers/{usager}/rdvs"))
    assert [r["id"] for r in mine["past"]] == [made[1]["id"], made[0]["id"]]
    assert mine["counts"] == {"unknown": 1, "seen": 1, "noshow": 1, "excused": 0, "revoked": 0}
    refused(org.boss.get(f"{org.path}/usagers/999999/rdvs"), 404)


# -- RDV lists, files and statistics --------------------------------------------------


@dataclass
class Seeded:
    org: Org
    agents: dict[str, int]
    motifs: dict[str, int]
    lieux: dict[str, int]
    usagers: dict[str, int]
    days: list[date]
    rdvs: list[dict]  # as the test expects them in lists, by start


@pytest.fixture
def seeded(org: Org) -> Seeded:
    """Three agents (alice and bob in Accueil, carol in Social), two lieux,
    three motifs, and nine RDVs over two weeks with every status."""
    agents = {name: org.agent(name, services=(service,)) for name, service in
              (("alice", "Accueil"), ("bob", "Accueil"), ("carol", "Social"))}  # fmt: skip
    lieux = {"mairie": org.lieu("Mairie"), "annexe": org.lieu("Annexe")}
    motifs = {"accueil": org.motif("Premier accueil", "Accueil"),
              "tel": org.motif("Rappel", "Accueil", "phone"),
              "social": org.motif("Aide sociale", "Social")}  # fmt: skip
    first = monday(-1)
    org.plage("alice", agents["alice"], [motifs["accueil"], motifs["tel"]], lieux["mairie"], first)
    org.plage("bob", agents["bob"], [motifs["accueil"]], lieux["annexe"], first)
    org.plage("carol", agents["carol"], [motifs["social"]], lieux["mairie"], first)
    usagers = {"jeanne": org.usager("Jeanne", "Valjean"), "formula": org.usager("=1+2", "Hugo"),
               "marius": org.usager("Marius", "Pontmercy")}  # fmt: skip
    days = working_days(monday(2), 4) + working_days(monday(3), 2)
    plan = [  # (agent, motif, lieu, day, hour, usagers, status)
        ("alice", "accueil", "mairie", 0, 9, ["jeanne"], "unknown"),
        ("alice", "tel", None, 0, 10, ["formula"], "seen"),
        ("bob", "accueil", "annexe", 1, 9, ["jeanne", "marius"], "noshow"),
        ("carol", "social", "mairie", 1, 11, ["marius"], "excused"),
        ("alice", "accueil", "mairie", 2, 14, [], "revoked"),
        ("carol", "social", "mairie", 3, 9, ["jeanne"], "unknown"),
        ("bob", "accueil", "annexe", 4, 16, ["formula"], "seen"),
        ("alice", "accueil", "mairie", 5, 8, ["marius"], "unknown"),
    ]
    names = {"jeanne": "Jeanne Valjean", "formula": "=1+2 Hugo", "marius": "Marius Pontmercy"}
    motif_names = {"accueil": ("Premier accueil", "Accueil"), "tel": ("Rappel", "Accueil"),
                   "social": ("Aide sociale", "Social")}  # fmt: skip
    rdvs = []
    for agent, motif, lieu, day, hour, people, status in plan:
        start = datetime.combine(days[day], time(hour), PARIS)
        made = org.book(agent, agents[agent], motifs[motif], lieux.get(lieu or ""), start,
                        [usagers[p] for p in people], status)  # fmt: skip
        rdvs.append({
            "id": made["id"], "agent": agent, "motif": motif, "lieu": lieu, "start": start,
            "status": status, "usagers": [names[p] for p in people],
            "motif_name": motif_names[motif][0], "service": motif_names[motif][1],
        })  # fmt: skip
    return Seeded(org, agents, motifs, lieux, usagers, days, sorted(rdvs, key=lambda r: r["start"]))


def _period(s: Seeded, **more: object) -> dict:
    return {"from": s.days[0].isoformat(), "to": s.days[-1].isoformat(), **more}


def _ids(answer: httpx.Response) -> list[str]:
    return [r["id"] for r in ok(answer)]


def test_rdv_lists_are_filtered_and_follow_the_readers_rights(seeded: Seeded) -> None:
    s, org = seeded, seeded.org
    url = f"{org.path}/rdvs"
    every = [r["id"] for r in s.rdvs]
    assert _ids(org.boss.get(url, params=_period(s))) == every
    one = ok(org.boss.get(url, params=_period(s)))[2]
    expected = s.rdvs[2]
    assert one == {
        "id": expected["id"], "agent_id": s.agents["bob"], "agent_name": "Bob",
        "motif_id": s.motifs["accueil"], "motif_name": "Premier accueil",
        "service_name": "Accueil", "lieu_id": s.lieux["annexe"], "lieu_name": "Annexe",
        "status": "noshow", "starts_at": expected["start"].isoformat(),
        "ends_at": (expected["start"] + timedelta(minutes=30)).isoformat(),
        "usagers": [{"id": s.usagers["jeanne"], "first_name": "Jeanne", "last_name": "Valjean"},
                    {"id": s.usagers["marius"], "first_name": "Marius",
                     "last_name": "Pontmercy"}],
    }  # fmt: skip

    def only(**wanted: object) -> list[str]:
        return [r["id"] for r in s.rdvs if all(r[k] == v for k, v in wanted.items())]

    assert _ids(org.boss.get(url, params=_period(s, agent=s.agents["alice"]))) == only(
        agent="alice"
    )
    assert _ids(org.boss.get(url, params=_period(s, motif=s.motifs["social"]))) == only(
        motif="social")  # fmt: skip
    assert _ids(org.boss.get(url, params=_period(s, lieu=s.lieux["annexe"]))) == only(lieu="annexe")
    assert _ids(org.boss.get(url, params=_period(s, status="seen,noshow"))) == [
        r["id"] for r in s.rdvs if r["status"] in ("seen", "noshow")]  # fmt: skip
    one_day = {"from": s.days[1].isoformat(), "to": s.days[1].isoformat()}
    assert _ids(org.boss.get(url, params=one_day)) == [
        r["id"] for r in s.rdvs if r["start"].date() == s.days[1]]  # fmt: skip
    # Combined filters that match nothing: an empty list.
    assert ok(org.boss.get(url, params=_period(s, agent=s.agents["carol"],
                                               motif=s.motifs["accueil"]))) == []  # fmt: skip
    # alice (basic, Accueil) sees her and bob's RDVs, never carol's.
    alice = org.client("alice")
    assert _ids(alice.get(url, params=_period(s))) == [
        r["id"] for r in s.rdvs if r["agent"] != "carol"]  # fmt: skip
    refused(alice.get(url, params=_period(s, agent=s.agents["carol"])), 422, "unknown-agent")
    # Bad filters.
    for params in ({"from": s.days[0].isoformat()}, _period(s, status="lost"),
                   _period(s, motif=999999), _period(s, lieu="x"),
                   {"from": "2026-01-01", "to": "2029-01-01"},
                   {"from": s.days[1].isoformat(), "to": s.days[0].isoformat()}):  # fmt: skip
        refused(org.boss.get(url, params=params), 422)


def _file_rows(s: Seeded, expected: list[dict]) -> list[list[str]]:
    """The rows the CSV must hold, computed from the plan."""
    rows = []
    for r in expected:
        end = r["start"] + timedelta(minutes=30)
        lieu = {"mairie": "Mairie", "annexe": "Annexe", None: ""}[r["lieu"]]
        names = ", ".join(("'" + n) if n.startswith("=") else n for n in r["usagers"])
        rows.append([r["start"].date().isoformat(), f"{r['start']:%H:%M}", f"{end:%H:%M}", "30",
                     LABELS[r["status"]], r["motif_name"], r["service"], lieu,
                     r["agent"].capitalize(), names, r["id"]])  # fmt: skip
    return rows


def test_the_csv_export_holds_exactly_the_listed_rows(seeded: Seeded) -> None:
    s, org = seeded, seeded.org
    answer = org.boss.get(f"{org.path}/rdvs.csv", params=_period(s))
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "text/csv; charset=utf-8"
    disposition = answer.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and f"rdvs-{org.id}-" in disposition
    assert answer.content.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in answer.content
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == HEADERS
    assert rows[1:] == _file_rows(s, s.rdvs)
    # A basic agent's file holds only what it may read; an empty match, the headers alone.
    mine = org.client("alice").get(f"{org.path}/rdvs.csv", params=_period(s))
    mine_rows = list(csv.reader(io.StringIO(mine.content.decode("utf-8-sig")), delimiter=";"))
    assert mine_rows[1:] == _file_rows(s, [r for r in s.rdvs if r["agent"] != "carol"])
    empty = org.boss.get(
        f"{org.path}/rdvs.csv", params=_period(s, status="revoked", agent=s.agents["bob"])
    )
    assert empty.status_code == 200
    assert empty.content.decode("utf-8-sig").splitlines() == [";".join(HEADERS)]
    refused(org.boss.get(f"{org.path}/rdvs.csv", params=_period(s, status="x")), 422)


def test_the_xlsx_export_holds_exactly_the_listed_rows(seeded: Seeded) -> None:
    s, org = seeded, seeded.org
    answer = org.boss.get(f"{org.path}/rdvs.xlsx", params=_period(s))
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")  # fmt: skip
    book = openpyxl.load_workbook(io.BytesIO(answer.content))
    assert book.sheetnames == ["RDV"]
    rows = [list(r) for r in book["RDV"].iter_rows(values_only=True)]
    assert rows[0] == HEADERS
    expected = []
    for r in s.rdvs:
        lieu = {"mairie": "Mairie", "annexe": "Annexe", None: None}[r["lieu"]]
        end = r["start"] + timedelta(minutes=30)
        # A name that looks like a formula stays text (openpyxl reads a formula back as "=...").
        expected.append([datetime.combine(r["start"].date(), time()), r["start"].time(),
                         end.time(), 30, LABELS[r["status"]], r["motif_name"], r["service"],
                         lieu, r["agent"].capitalize(), ", ".join(r["usagers"]) or None,
                         r["id"]])  # fmt: skip
    assert rows[1:] == expected
    cells = {c.value: c.data_type for row in book["RDV"].iter_rows() for c in row}
    assert cells["=1+2 Hugo"] == "s"
    empty = org.boss.get(
        f"{org.path}/rdvs.xlsx", params=_period(s, motif=s.motifs["tel"], lieu=s.lieux["annexe"])
    )
    empty_rows = list(openpyxl.load_workbook(io.BytesIO(empty.content))["RDV"].values)
    assert empty_rows == [tuple(HEADERS)]
    refused(org.boss.get(f"{org.path}/rdvs.xlsx", params={"to": s.days[0].isoformat()}), 422)


def test_statistics_count_by_motif_status_and_week(
    module_server: Server, operator: httpx.Client, seeded: Seeded
) -> None:
    s, org = seeded, seeded.org
    period = {"from": s.days[0].isoformat(), "to": s.days[-1].isoformat()}
    stats = ok(org.boss.get(f"{org.path}/statistics", params=period))
    assert stats["total"] == 8
    assert stats["from"] == datetime.combine(s.days[0], time(), PARIS).isoformat()
    assert (
        stats["to"] == datetime.combine(s.days[-1] + timedelta(days=1), time(), PARIS).isoformat()
    )
    assert stats["by_motif"] == _by_motif(s)
    assert [m["count"] for m in stats["by_motif"]] == [5, 2, 1]
    assert stats["by_status"] == {"unknown": 3, "seen": 2, "noshow": 1, "excused": 1,
                                  "revoked": 1}  # fmt: skip
    weeks: dict[str, int] = {}
    for r in s.rdvs:
        year, week, _ = r["start"].isocalendar()
        weeks[f"{year}-W{week:02d}"] = weeks.get(f"{year}-W{week:02d}", 0) + 1
    first_monday = s.days[0] - timedelta(days=s.days[0].weekday())
    assert stats["by_week"][0]["starts_on"] == first_monday.isoformat()
    assert {w["week"]: w["count"] for w in stats["by_week"] if w["count"]} == weeks
    assert sum(w["count"] for w in stats["by_week"]) == 8
    only_seen = ok(org.boss.get(f"{org.path}/statistics", params={**period, "status": "seen"}))
    assert only_seen["total"] == 2 and only_seen["by_status"]["seen"] == 2
    # Admins (and operators) only; another organisation's admin gets a 404.
    refused(org.client("alice").get(f"{org.path}/statistics", params=period), 403)
    assert ok(operator.get(f"{org.path}/statistics", params=period))["total"] == 8
    other = new_org(module_server, operator)
    try:
        refused(other.boss.get(f"{org.path}/statistics", params=period), 404)
        refused(other.boss.get(f"{org.path}/rdvs.csv", params=period), 404)
    finally:
        other.close()


def _by_motif(s: Seeded) -> list[dict]:
    counts: dict[str, int] = {}
    for r in s.rdvs:
        counts[r["motif"]] = counts.get(r["motif"], 0) + 1
    names = {"accueil": "Premier accueil", "tel": "Rappel", "social": "Aide sociale"}
    ordered = sorted(counts.items(), key=lambda i: (-i[1], s.motifs[i[0]]))
    return [{"motif_id": s.motifs[m], "motif_name": names[m], "count": n} for m, n in ordered]
