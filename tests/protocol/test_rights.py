"""Who sees what, over CalDAV, with agents created by the operator's command."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import httpx
import pytest

from storage import agents, scheduling
from storage.database import Database
from tests.conftest import ADMIN_PASSWORD, Server, run_cli
from tests.dates import at, working_monday
from tests.ics import event
from tests.team import PASSWORDS, SERVICES, create_team

MONDAY_9 = at(working_monday(), 9)


@pytest.fixture
def team(server: Server) -> Server:
    """Three agents, created in-process on the server's database (the operator's
    command itself is tested in tests/calserver/test_cli.py), a phone motif of
    their services, and for each a plage on Monday morning where RDVs fit."""
    db = Database(server.database_url)
    with db.transaction(write=True) as conn:
        organisation = agents.organisation_id(conn, "mon-organisation")
        create_team(conn, organisation)
        for name in sorted(set(SERVICES.values())):  # PMI's motif is id 1
            scheduling.create_motif(
                conn,
                {
                    "organisation_id": organisation,
                    "service_id": agents.service_id(conn, organisation, name),
                    "name": f"Entretien {name}",
                    "location_type": "phone",
                },
            )
    db.dispose()
    for login in PASSWORDS:
        with _as(login) as client:
            plage = event(f"plage-{login}", MONDAY_9, minutes=180).encode()
            url = server.dav + f"{login}/plages/monday.ics"
            assert client.put(url, content=plage).status_code == 201, url
    return server


def _as(login: str) -> httpx.Client:
    password = ADMIN_PASSWORD if login == "admin" else PASSWORDS[login]
    return httpx.Client(auth=(login, password))


def _put(client: httpx.Client, url: str, uid: str) -> int:
    """PUT an event; in an rdv agenda, a valid RDV for the PMI motif (id 1)."""
    extra = "X-CALSERVER-MOTIF:1" if "/rdv/" in url else ""
    body = event(uid, MONDAY_9, extra=extra).encode()
    return client.put(url, content=body, headers={"Content-Type": "text/calendar"}).status_code


def _absent(server: Server, path: str) -> bool:
    """Whether ``path`` holds nothing, as its owner reads it (a refused write
    must have stored nothing)."""
    with _as(path.split("/", 1)[0]) as owner:
        return owner.get(server.dav + path).status_code == 404


def test_agents_of_one_service_share_their_rdv_agenda(team: Server) -> None:
    with _as("alice") as alice, _as("bob") as bob:
        assert _put(alice, team.dav + "bob/rdv/from-alice.ics", "from-alice") == 201
        assert bob.get(team.dav + "bob/rdv/from-alice.ics").status_code == 200
        assert alice.get(team.dav + "bob/rdv/from-alice.ics").status_code == 200


def test_colleague_cannot_touch_plages_or_absences(team: Server) -> None:
    with _as("alice") as alice:
        for agenda in ("plages", "indisponibilites"):
            assert _put(alice, team.dav + f"bob/{agenda}/x.ics", "x") == 403
            assert _absent(team, f"bob/{agenda}/x.ics")
            answer = alice.request("PROPFIND", team.dav + f"bob/{agenda}/", headers={"Depth": "1"})
            assert answer.status_code == 403


def test_other_service_sees_nothing(team: Server) -> None:
    with _as("carol") as carol:
        assert _put(carol, team.dav + "alice/rdv/y.ics", "y") == 403
        assert _absent(team, "alice/rdv/y.ics")
        assert carol.get(team.dav + "alice/rdv/").status_code == 403
        root = carol.request("PROPFIND", team.dav, headers={"Depth": "1"})
        assert root.status_code == 207
        listed = {h.text for h in ET.fromstring(root.content).iter("{DAV:}href")}
        assert "/dav/carol/" in listed
        assert not listed & {"/dav/alice/", "/dav/bob/", "/dav/admin/"}


def test_admin_manages_every_agenda_of_the_organisation(team: Server) -> None:
    with _as("admin") as admin:
        for login in PASSWORDS:
            assert _put(admin, team.dav + f"{login}/plages/p.ics", f"p-{login}") == 201
    with _as("alice") as alice:
        assert _put(alice, team.dav + "admin/plages/z.ics", "z") == 403
    assert _absent(team, "admin/plages/z.ics")


def test_agent_creates_its_own_calendars(team: Server) -> None:
    with _as("alice") as alice:
        created = alice.request("MKCALENDAR", team.dav + "alice/perso/")
        assert created.status_code == 201
        assert _put(alice, team.dav + "alice/perso/e.ics", "e") == 201
    with _as("bob") as bob:
        assert bob.get(team.dav + "alice/perso/e.ics").status_code == 403
        assert _put(bob, team.dav + "alice/perso/e.ics", "e-from-bob") == 403
    with _as("alice") as alice:
        assert "UID:e\r\n" in alice.get(team.dav + "alice/perso/e.ics").text


def test_password_reset_takes_effect_at_once(team: Server) -> None:
    with _as("alice") as alice:
        assert alice.request("PROPFIND", team.dav + "alice/").status_code == 207
        result = run_cli(
            team.database_url, "set-password", "alice", "--password-stdin", stdin="a-new-password\n"
        )
        assert result.returncode == 0, result.stderr
        assert alice.request("PROPFIND", team.dav + "alice/").status_code == 401
    with httpx.Client(auth=("alice", "a-new-password")) as renewed:
        assert renewed.request("PROPFIND", team.dav + "alice/").status_code == 207


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


def test_nobody_deletes_or_replaces_an_agents_agendas(team: Server) -> None:
    whole = event("w", MONDAY_9).encode()
    with _as("alice") as alice:
        at_ten = event("kept", MONDAY_9.replace(hour=10), extra="X-CALSERVER-MOTIF:1")
        assert alice.put(team.dav + "alice/rdv/kept.ics", content=at_ten).status_code == 201
        agendas = ("rdv", "plages", "indisponibilites")
        kept = {a: _listing(alice, team.dav + f"alice/{a}/") for a in agendas}
    for login, target in (("alice", "alice"), ("bob", "alice"), ("admin", "alice")):
        with _as(login) as client:
            for agenda in ("rdv", "plages", "indisponibilites"):
                url = team.dav + f"{target}/{agenda}/"
                if login == "bob" and agenda != "rdv":
                    continue  # no right on it at all, tested above
                assert client.delete(url).status_code == 403, (login, agenda)
                replaced = client.put(url, content=whole, headers={"Content-Type": "text/calendar"})
                assert replaced.status_code == 403, (login, agenda)
    with _as("alice") as alice:
        for agenda, items in kept.items():
            assert _listing(alice, team.dav + f"alice/{agenda}/") == items, agenda
        assert "/dav/alice/rdv/kept.ics" in kept["rdv"]
        assert _put(alice, team.dav + "alice/rdv/still.ics", "still") == 201
        assert alice.delete(team.dav + "alice/rdv/still.ics").status_code in (200, 204)
        assert alice.request("MKCALENDAR", team.dav + "alice/perso/").status_code == 201
        assert alice.delete(team.dav + "alice/perso/").status_code in (200, 204)
