"""Two organisations on one server: neither side reads or writes the other's
agendas, records, usagers, feeds or créneaux, over CalDAV and the API, even
where both name a service "PMI".

The second organisation and its first admin are created in-process on the
server's database with ``storage.agents`` (``tests/protocol/test_admin_api.py``
does it through the API, as an operator); everything else goes through the API.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import icalendar
import pytest

from storage import agents
from storage.database import Database
from tests.conftest import ADMIN_PASSWORD, Server
from tests.dates import at, monday, working_days
from tests.ics import event

API = "/api/v1"
_WEEK = timedelta(days=7)
WEEKDAYS = ["MO", "TU", "WE", "TH", "FR"]


def _ok(answer: httpx.Response, status: int = 200) -> dict:
    assert answer.status_code == status, answer.text
    return answer.json()


@dataclass
class Side:
    """One organisation: its admin, a basic agent of its PMI service, a
    lieu, a home-visit motif, a usager with an address, an RDV and the
    agent's feed."""

    server: Server
    org: int
    admin_login: str
    admin_password: str
    agent_login: str
    agent: int
    lieu: int
    motif: int
    usager: int
    rdv: str
    feed: str

    def client(self, who: str = "admin") -> httpx.Client:
        auth = (
            (self.admin_login, self.admin_password)
            if who == "admin"
            else (self.agent_login, f"{self.agent_login}-password")
        )
        return httpx.Client(base_url=self.server.url + API, auth=auth, timeout=30)

    def dav(self, who: str = "admin") -> httpx.Client:
        client = self.client(who)
        client.base_url = self.server.dav
        return client


def _side(server: Server, org: int, admin: tuple[str, str], prefix: str) -> Side:
    with httpx.Client(base_url=server.url + API, auth=admin, timeout=30) as api:
        login = f"{prefix}-agent"
        new = {"login": login, "services": ["PMI"], "password": f"{login}-password"}
        agent = _ok(api.post(f"/organisations/{org}/agents", json=new), 201)["id"]
        service = next(
            s for s in _ok(api.get(f"/organisations/{org}/services")) if s["name"] == "PMI"
        )
        lieu = {"name": f"Maison {prefix}", "address": f"1 rue {prefix}, 75011 Paris"}
        lieu_id = _ok(api.post(f"/organisations/{org}/lieux", json=lieu), 201)["id"]
        motif = {
            "name": f"Visite {prefix}",
            "service_id": service["id"],
            "location_type": "home",
        }
        motif_id = _ok(api.post(f"/organisations/{org}/motifs", json=motif), 201)["id"]
        usager = {
            "first_name": f"Usager{prefix}",
            "last_name": f"Secret{prefix}",
            "email": f"{prefix}@example.org",
            "address": f"12 impasse {prefix}, {69000 + ord(prefix[0]) - 96} Lyon",
        }
        usager_id = _ok(api.post(f"/organisations/{org}/usagers", json=usager), 201)["id"]
        plage = {
            "motif_ids": [motif_id],
            "first_day": str(monday(2)),
            "start_time": "09:00",
            "end_time": "12:00",
            "recurrence": {"frequency": "weekly", "weekdays": WEEKDAYS},
        }
        _ok(api.post(f"/agents/{agent}/plages", json=plage), 201)
        day = working_days(monday(2), 1)[0]
        rdv = {
            "agent_id": agent,
            "motif_id": motif_id,
            "starts_at": at(day, 9).isoformat(),
            "usager_ids": [usager_id],
        }
        rdv_id = _ok(api.post("/rdvs", json=rdv), 201)["id"]
        feed = _ok(api.get(f"/agents/{agent}/feed"))["https"]
    return Side(server, org, admin[0], admin[1], login, agent, lieu_id, motif_id, usager_id,
                rdv_id, feed)  # fmt: skip


@pytest.fixture(scope="module")
def sides(module_server: Server) -> Iterator[tuple[Side, Side]]:
    server = module_server
    db = Database(server.database_url)
    with db.transaction(write=True) as conn:
        other = agents.create_organisation(conn, "Autre département", "autre")
        agents.create_agent(
            conn, "admin-b", organisation=other, role="admin", password="admin-b-password"
        )
        # The first admin operates the server (an admin of every organisation
        # through the API): here both sides' admins are ordinary ones.
        agents.set_operator(conn, "admin", False)
    db.dispose()
    with httpx.Client(base_url=server.url + API, auth=("admin", ADMIN_PASSWORD)) as admin:
        first = _ok(admin.get("/me"))["organisations"][0]["id"]
    a = _side(server, first, ("admin", ADMIN_PASSWORD), "a")
    b = _side(server, other, ("admin-b", "admin-b-password"), "b")
    yield a, b


def _both_ways(sides: tuple[Side, Side]) -> list[tuple[Side, Side]]:
    a, b = sides
    return [(a, b), (b, a)]


# -- CalDAV --------------------------------------------------------------------------


def test_caldav_agendas_stay_inside_their_organisation(sides: tuple[Side, Side]) -> None:
    """Neither the admin nor the agent of one side reads or writes the other's
    agendas; both agents being in a service called PMI grants nothing."""
    for mine, theirs in _both_ways(sides):
        rdv_href = f"{theirs.agent_login}/rdv/{theirs.rdv}.ics"
        with theirs.dav("agent") as owner:
            kept = owner.get(rdv_href).text
        for who in ("admin", "agent"):
            with mine.dav(who) as client:
                for agenda in ("rdv", "plages", "indisponibilites"):
                    listing = client.request(
                        "PROPFIND", f"{theirs.agent_login}/{agenda}/", headers={"Depth": "1"}
                    )
                    assert listing.status_code == 403, (who, agenda)
                    body = event(f"intrusion-{who}", at(monday(2), 14)).encode()
                    put = client.put(f"{theirs.agent_login}/{agenda}/intrusion-{who}.ics",
                                     content=body)  # fmt: skip
                    assert put.status_code == 403, (who, agenda)
                assert client.get(rdv_href).status_code == 403
                assert client.delete(rdv_href).status_code == 403
                root = client.request("PROPFIND", "", headers={"Depth": "1"})
                listed = {h.text for h in ET.fromstring(root.content).iter("{DAV:}href")}
                assert f"/dav/{theirs.agent_login}/" not in listed
                assert f"/dav/{theirs.admin_login}/" not in listed
        with theirs.dav("agent") as owner:
            assert owner.get(rdv_href).text == kept
            for agenda in ("rdv", "plages", "indisponibilites"):
                for who in ("admin", "agent"):
                    href = f"{theirs.agent_login}/{agenda}/intrusion-{who}.ics"
                    assert owner.get(href).status_code == 404


def test_caldav_writes_cannot_name_the_other_sides_motif_or_lieu(
    sides: tuple[Side, Side],
) -> None:
    a, b = sides
    day = working_days(monday(2), 2)[1]
    with a.dav("agent") as client:
        rdv = event("cross-motif", at(day, 10), extra=f"X-CALSERVER-MOTIF:{b.motif}")
        refused = client.put(f"{a.agent_login}/rdv/cross-motif.ics", content=rdv.encode())
        assert refused.status_code == 403 and "unknown-motif" in refused.text
        plage = event("cross-lieu", at(day, 14), 60, extra=f"X-CALSERVER-LIEU:{b.lieu}")
        refused = client.put(f"{a.agent_login}/plages/cross-lieu.ics", content=plage.encode())
        assert refused.status_code == 403 and "unknown-lieu" in refused.text
        assert client.get(f"{a.agent_login}/rdv/cross-motif.ics").status_code == 404
        assert client.get(f"{a.agent_login}/plages/cross-lieu.ics").status_code == 404


def test_caldav_rdv_cannot_attach_the_other_sides_usager(sides: tuple[Side, Side]) -> None:
    """A PUT naming another organisation's usager in X-CALSERVER-USAGER is
    refused like the API's request (unknown-usager): stored, it would let A's
    feed print B's usager's postcode and city for a home visit."""
    a, b = sides
    day = working_days(monday(2), 3)[2]
    extra = f"X-CALSERVER-MOTIF:{a.motif}\r\nX-CALSERVER-USAGER:{b.usager}"
    href = f"{a.agent_login}/rdv/cross-usager.ics"
    with a.dav("agent") as client:
        try:
            put = client.put(href, content=event("cross-usager", at(day, 10), extra=extra).encode())
            stored = client.get(href).status_code
            feed = httpx.get(a.feed).text
        finally:
            client.delete(href)  # the other tests expect A's agenda as the fixture left it
    assert (put.status_code, stored) == (403, 404), put.text
    assert "69002" not in feed


# -- API -------------------------------------------------------------------------------


def test_api_records_of_the_other_side_are_not_found(sides: tuple[Side, Side]) -> None:
    for mine, theirs in _both_ways(sides):
        org = f"/organisations/{theirs.org}"
        for who in ("admin", "agent"):
            with mine.client(who) as api:
                for path in ("", "/services", "/agents", "/lieux", "/motifs", "/usagers"):
                    assert api.get(org + path).status_code == 404, (who, path)
                assert api.get(f"{org}/usagers/{theirs.usager}").status_code == 404
                # Nor through one's own organisation's path.
                own = f"/organisations/{mine.org}"
                assert api.get(f"{own}/usagers/{theirs.usager}").status_code == 404
                assert api.get(f"{own}/motifs/{theirs.motif}").status_code == 404
                assert api.get(f"{own}/lieux/{theirs.lieu}").status_code == 404
                listed = _ok(api.get(f"{own}/usagers"))
                assert theirs.usager not in {u["id"] for u in listed}
                agents_listed = _ok(api.get(f"{own}/agents"))
                assert theirs.agent not in {x["id"] for x in agents_listed}


def test_api_writes_into_the_other_side_are_refused(sides: tuple[Side, Side]) -> None:
    for mine, theirs in _both_ways(sides):
        org = f"/organisations/{theirs.org}"
        with mine.client("admin") as api:
            before = _ok_as(theirs, f"{org}")
            assert api.patch(org, json={"overbooking_allowed": True}).status_code == 404
            lieu = {"name": "Intrus", "address": "1 rue X, 75001 Paris"}
            assert api.post(f"{org}/lieux", json=lieu).status_code == 404
            new = {"login": f"intrus-{theirs.org}", "password": "intrus-password"}
            assert api.post(f"{org}/agents", json=new).status_code == 404
            own_path = f"/organisations/{mine.org}/agents/{theirs.agent}"
            assert api.patch(own_path, json={"display_name": "Renamed"}).status_code == 404
            renamed = {"first_name": "Renamed"}
            assert api.patch(f"{org}/usagers/{theirs.usager}", json=renamed).status_code == 404
            service = _ok_as(theirs, f"{org}/services")[0]["id"]
            motif = {"name": "Intrus", "service_id": service}
            refused = api.post(f"/organisations/{mine.org}/motifs", json=motif)
            assert refused.status_code == 422
            assert refused.json()["error"]["code"] == "unknown-service"
            assert _ok_as(theirs, org) == before
            names = {x["name"] for x in _ok_as(theirs, f"{org}/lieux")}
            assert "Intrus" not in names
            motifs = _ok_as(mine, f"/organisations/{mine.org}/motifs")
            assert all(m["name"] != "Intrus" for m in motifs)
            usager = _ok_as(theirs, f"{org}/usagers/{theirs.usager}")
            assert usager["first_name"] != "Renamed"


def _ok_as(side: Side, path: str) -> dict:
    with side.client("admin") as api:
        return _ok(api.get(path))


def test_api_agendas_of_the_other_side_are_out_of_reach(sides: tuple[Side, Side]) -> None:
    day = working_days(monday(2), 4)[3]
    for mine, theirs in _both_ways(sides):
        agent = f"/agents/{theirs.agent}"
        with mine.client("admin") as api:
            for path in ("/plages", "/indisponibilites", "/rdvs", f"/rdvs/{theirs.rdv}"):
                assert api.get(agent + path).status_code == 404, path
            assert api.get(agent + "/feed").status_code in (403, 404)
            assert api.post(agent + "/feed/rotate").status_code in (403, 404)
            absence = {"starts_at": str(day), "ends_at": str(day)}
            assert api.post(agent + "/indisponibilites", json=absence).status_code == 404
            cancel = api.delete(f"{agent}/rdvs/{theirs.rdv}")
            assert cancel.status_code == 404
            booking = {"agent_id": theirs.agent, "motif_id": theirs.motif,
                       "starts_at": at(day, 10).isoformat()}  # fmt: skip
            assert api.post("/rdvs", json=booking).status_code == 404
            # Their usager in one's own agenda: refused, nothing stored.
            own = {"agent_id": mine.agent, "motif_id": mine.motif,
                   "starts_at": at(day, 10).isoformat(), "usager_ids": [theirs.usager]}  # fmt: skip
            refused = api.post("/rdvs", json=own)
            assert refused.status_code == 422
            assert refused.json()["error"]["code"] == "unknown-usager"
            # Their motif in one's own agenda.
            crossed = {**own, "motif_id": theirs.motif, "usager_ids": []}
            refused = api.post("/rdvs", json=crossed)
            assert refused.status_code == 422
            assert refused.json()["error"]["code"] == "unknown-motif"
            listed = _ok(
                api.get(f"/agents/{mine.agent}/rdvs", params={"from": str(day), "to": str(day)})
            )
            assert listed == []
        with theirs.client("agent") as owner:
            (rdv,) = _ok(
                owner.get(
                    f"/agents/{theirs.agent}/rdvs",
                    params={"from": str(monday(2)), "to": str(monday(2) + _WEEK)},
                )
            )
            assert rdv["id"] == theirs.rdv and rdv["status"] == "unknown"
            assert _ok(owner.get(f"/agents/{theirs.agent}/indisponibilites")) == []


def test_creneaux_of_the_other_sides_motif_are_not_searchable(sides: tuple[Side, Side]) -> None:
    first = monday(2)
    window = {"from": str(first), "to": str(first + _WEEK)}
    for mine, theirs in _both_ways(sides):
        with mine.client("agent") as api:
            assert _ok(api.get("/creneaux", params={"motif": mine.motif, **window}))["creneaux"]
            search = api.get("/creneaux", params={"motif": theirs.motif, **window})
            assert search.status_code == 404
            assert api.get("/creneaux/next", params={"motif": theirs.motif}).status_code == 404
            # Their agent named in a search of one's own motif offers nothing.
            crossed = {"motif": mine.motif, "agents": str(theirs.agent), **window}
            assert _ok(api.get("/creneaux", params=crossed))["creneaux"] == []


def test_feeds_show_nothing_of_the_other_side(sides: tuple[Side, Side]) -> None:
    for mine, theirs in _both_ways(sides):
        feed = httpx.get(mine.feed)
        assert feed.status_code == 200
        calendar = icalendar.Calendar.from_ical(feed.content)
        # One event, its own RDV (the feed's UIDs are opaque: the motif says whose).
        assert len(calendar.walk("VEVENT")) == 1
        text = feed.text.replace("\r\n ", "")
        assert f"Visite {_prefix(mine)}" in text
        for foreign in (theirs.rdv, f"Visite {_prefix(theirs)}", f"Maison {_prefix(theirs)}"):
            assert foreign not in text
        for usager in sides:
            assert f"Secret{_prefix(usager)}" not in text


def _prefix(side: Side) -> str:
    return side.agent_login.split("-", 1)[0]
