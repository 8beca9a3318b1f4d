"""Who sees what, over CalDAV, with agents created by the operator's command.

The tests share one server per database (``module_server``): each has a team
of its own (alice, bob and carol under logins suffixed for that test), so
what one test writes or changes (a password, a calendar) is nobody else's."""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import httpx
import pytest

from storage import agents, scheduling
from storage.database import Database
from tests.conftest import ADMIN_PASSWORD, Server, run_cli
from tests.dates import at, working_monday
from tests.ics import event
from tests.team import PASSWORDS, SERVICES

MONDAY_9 = at(working_monday(), 9)


@dataclass
class Team:
    """alice and bob of PMI, carol of Social, as logins of one test's own;
    ``admin`` is the organisation's admin, shared by all."""

    server: Server
    logins: dict[str, str]
    motif: int  # a motif of PMI, valid in an rdv agenda of alice or bob

    def url(self, who: str, rest: str = "") -> str:
        """The DAV URL of ``rest`` under the home of ``who`` (alice, bob...)."""
        return self.server.dav + f"{self.logins[who]}/{rest}"

    def client(self, who: str) -> httpx.Client:
        password = ADMIN_PASSWORD if who == "admin" else PASSWORDS[who]
        return httpx.Client(auth=(self.logins[who], password))


@pytest.fixture(scope="module")
def pmi_motif(module_server: Server) -> int:
    """A phone motif of each service of the teams, in the server's one
    organisation, created once per server; the id of PMI's."""
    db = Database(module_server.database_url)
    with db.transaction(write=True) as conn:
        organisation = agents.organisation_id(conn, "mon-organisation")
        ids = {
            name: scheduling.create_motif(
                conn,
                {
                    "organisation_id": organisation,
                    "service_id": agents.service_id(conn, organisation, name),
                    "name": f"Entretien {name}",
                    "location_type": "phone",
                },
            )["id"]
            for name in sorted(set(SERVICES.values()))
        }
    db.dispose()
    return ids["PMI"]


@pytest.fixture
def team(module_server: Server, pmi_motif: int) -> Team:
    """Three agents of this test's own, created in-process on the server's
    database (the operator's command itself is tested in
    tests/calserver/test_cli.py), and for each a plage on Monday morning where
    RDVs fit."""
    suffix = secrets.token_hex(4)
    logins = {name: f"{name}-{suffix}" for name in PASSWORDS} | {"admin": "admin"}
    db = Database(module_server.database_url)
    with db.transaction(write=True) as conn:
        organisation = agents.organisation_id(conn, "mon-organisation")
        for name, password in PASSWORDS.items():
            agents.create_agent(
                conn,
                logins[name],
                organisation=organisation,
                role="basic",
                password=password,
                services_names=(SERVICES[name],),
            )
    db.dispose()
    found = Team(module_server, logins, pmi_motif)
    for name in PASSWORDS:
        with found.client(name) as client:
            plage = event(f"plage-{logins[name]}", MONDAY_9, minutes=180).encode()
            url = found.url(name, "plages/monday.ics")
            assert client.put(url, content=plage).status_code == 201, url
    return found


def _put(team: Team, client: httpx.Client, url: str, uid: str) -> int:
    """PUT an event; in an rdv agenda, a valid RDV for the PMI motif."""
    extra = f"X-CALSERVER-MOTIF:{team.motif}" if "/rdv/" in url else ""
    body = event(uid, MONDAY_9, extra=extra).encode()
    return client.put(url, content=body, headers={"Content-Type": "text/calendar"}).status_code


def _absent(team: Team, who: str, rest: str) -> bool:
    """Whether ``rest`` under the home of ``who`` holds nothing, as its owner
    reads it (a refused write must have stored nothing)."""
    with team.client(who) as owner:
        return owner.get(team.url(who, rest)).status_code == 404


def test_agents_of_one_service_share_their_rdv_agenda(team: Team) -> None:
    url = team.url("bob", "rdv/from-alice.ics")
    with team.client("alice") as alice, team.client("bob") as bob:
        assert _put(team, alice, url, "from-alice") == 201
        assert bob.get(url).status_code == 200
        assert alice.get(url).status_code == 200


def test_colleague_cannot_touch_plages_or_absences(team: Team) -> None:
    """A colleague writes neither; reads absences (masked, see
    tests/protocol/test_agent_rules.py), never plages."""
    with team.client("alice") as alice:
        for agenda, listing in (("plages", 403), ("indisponibilites", 207)):
            assert _put(team, alice, team.url("bob", f"{agenda}/x.ics"), "x") == 403
            assert _absent(team, "bob", f"{agenda}/x.ics")
            answer = alice.request(
                "PROPFIND", team.url("bob", f"{agenda}/"), headers={"Depth": "1"}
            )
            assert answer.status_code == listing


def test_other_service_sees_nothing(team: Team) -> None:
    with team.client("carol") as carol:
        assert _put(team, carol, team.url("alice", "rdv/y.ics"), "y") == 403
        assert _absent(team, "alice", "rdv/y.ics")
        assert carol.get(team.url("alice", "rdv/")).status_code == 403
        root = carol.request("PROPFIND", team.server.dav, headers={"Depth": "1"})
        assert root.status_code == 207
        listed = {h.text for h in ET.fromstring(root.content).iter("{DAV:}href")}
        assert f"/dav/{team.logins['carol']}/" in listed
        hidden = {f"/dav/{team.logins[who]}/" for who in ("alice", "bob", "admin")}
        assert not listed & hidden


def test_admin_manages_every_agenda_of_the_organisation(team: Team) -> None:
    with team.client("admin") as admin:
        for who in PASSWORDS:
            assert _put(team, admin, team.url(who, "plages/p.ics"), f"p-{who}") == 201
    refused = f"plages/z-{team.logins['alice']}.ics"  # admin's agenda is shared by all tests
    with team.client("alice") as alice:
        assert _put(team, alice, team.url("admin", refused), "z") == 403
    assert _absent(team, "admin", refused)


def test_agent_creates_its_own_calendars(team: Team) -> None:
    url = team.url("alice", "perso/e.ics")
    with team.client("alice") as alice:
        created = alice.request("MKCALENDAR", team.url("alice", "perso/"))
        assert created.status_code == 201
        assert _put(team, alice, url, "e") == 201
    with team.client("bob") as bob:
        assert bob.get(url).status_code == 403
        assert _put(team, bob, url, "e-from-bob") == 403
    with team.client("alice") as alice:
        assert "UID:e\r\n" in alice.get(url).text


def test_password_reset_takes_effect_at_once(team: Team) -> None:
    login = team.logins["alice"]
    with team.client("alice") as alice:
        assert alice.request("PROPFIND", team.url("alice")).status_code == 207
        result = run_cli(
            team.server.database_url,
            "set-password",
            login,
            "--password-stdin",
            stdin="a-new-password\n",
        )
        assert result.returncode == 0, result.stderr
        assert alice.request("PROPFIND", team.url("alice")).status_code == 401
    with httpx.Client(auth=(login, "a-new-password")) as renewed:
        assert renewed.request("PROPFIND", team.url("alice")).status_code == 207


def _listing(client: httpx.Client, url: str) -> dict[str, str]:
    """{href: etag} of a collection's items."""
    answer = client.request(
        "PROPFIND",
        url,
        headers={"Depth": "1"},
        content=b'<propfind xmlns="DAV:"><prop><getetag/></prop></propfind>',
    )
    assert answer.status_code == 207
    return {
        r.findtext("{DAV:}href"): r.findtext(".//{DAV:}getetag")
        for r in ET.fromstring(answer.content).iter("{DAV:}response")
        if r.findtext(".//{DAV:}getetag")
    }


def test_nobody_deletes_or_replaces_an_agents_agendas(team: Team) -> None:
    whole = event("w", MONDAY_9).encode()
    agendas = ("rdv", "plages", "indisponibilites")
    with team.client("alice") as alice:
        at_ten = event("kept", MONDAY_9.replace(hour=10), extra=f"X-CALSERVER-MOTIF:{team.motif}")
        assert alice.put(team.url("alice", "rdv/kept.ics"), content=at_ten).status_code == 201
        kept = {a: _listing(alice, team.url("alice", f"{a}/")) for a in agendas}
    for who in ("alice", "bob", "admin"):
        with team.client(who) as client:
            for agenda in agendas:
                url = team.url("alice", f"{agenda}/")
                if who == "bob" and agenda != "rdv":
                    continue  # no right on it at all, tested above
                assert client.delete(url).status_code == 403, (who, agenda)
                replaced = client.put(url, content=whole, headers={"Content-Type": "text/calendar"})
                assert replaced.status_code == 403, (who, agenda)
    with team.client("alice") as alice:
        for agenda, items in kept.items():
            assert _listing(alice, team.url("alice", f"{agenda}/")) == items, agenda
        assert f"/dav/{team.logins['alice']}/rdv/kept.ics" in kept["rdv"]
        assert _put(team, alice, team.url("alice", "rdv/still.ics"), "still") == 201
        assert alice.delete(team.url("alice", "rdv/still.ics")).status_code in (200, 204)
        assert alice.request("MKCALENDAR", team.url("alice", "perso/")).status_code == 201
        assert alice.delete(team.url("alice", "perso/")).status_code in (200, 204)
