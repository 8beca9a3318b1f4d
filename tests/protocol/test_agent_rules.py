"""The agents' rules of RDV-SP's guides, over real HTTP on both paths (CalDAV
and the JSON API), on SQLite and PostgreSQL:

- an agent sets an RDV's duration (a multiple of 5 minutes, inside the
  plage), by ``duration_in_min``/``ends_at`` or by DTEND/DURATION;
- a basic agent searches the créneaux of its own services' motifs; admins
  and members of a secrétariat service, of the whole organisation;
- colleagues read each other's absences, masked ("Indisponible"), never write;
- an intervenant's agendas are managed by the agents of its services, and it
  receives nothing (no feed);
- a plage without motifs (a plain calendar client's) is for agents' bookings,
  never online.

One server per database for the module; each test works on its own days.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import caldav
import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, Server
from tests.dates import at, working_days, working_monday
from tests.ics import event
from tests.protocol.office import ok

API = "/api/v1"
ICS = {"Content-Type": "text/calendar"}
PASSWORD = "agent-password-1"
BOOKING_NS = "urn:calserver:booking"
WEEKDAYS = ["MO", "TU", "WE", "TH", "FR"]


@dataclass
class Org:
    """alice and bob (PMI), carol (Social), sec (Secrétariat, a secrétariat
    service), inter (an intervenant of PMI); a lieu; PMI's motif at the lieu
    and by phone (bookable online), Social's by phone; weekday plages of
    alice, bob and inter 09:00-12:00 offering PMI's motifs."""

    server: Server
    org: int
    ids: dict[str, int]
    services: dict[str, int]
    lieu: int
    pmi: int
    pmi_phone: int
    social: int
    days: list[date]

    def api(self, who: str) -> httpx.Client:
        password = ADMIN_PASSWORD if who == "admin" else PASSWORD
        return httpx.Client(base_url=self.server.url + API, auth=(who, password), timeout=30)

    def dav(self, who: str) -> httpx.Client:
        password = ADMIN_PASSWORD if who == "admin" else PASSWORD
        return httpx.Client(auth=(who, password), timeout=30)

    def url(self, owner: str, rest: str) -> str:
        return f"{self.server.dav}{owner}/{rest}"

    def day(self, n: int) -> date:
        return self.days[n]


@pytest.fixture(scope="module")
def org(module_server: Server) -> Iterator[Org]:
    server = module_server
    with httpx.Client(base_url=server.url + API, auth=("admin", ADMIN_PASSWORD)) as admin:
        org = ok(admin.get("/me"))["organisations"][0]["id"]
        base = f"/organisations/{org}"
        services = {}
        for name, secretariat in (("PMI", False), ("Social", False), ("Secrétariat", True)):
            created = admin.post(
                f"{base}/services", json={"name": name, "secretariat": secretariat}
            )
            if created.status_code == 409:  # PMI may exist already
                services[name] = created.json()["error"]["existing_id"]
            else:
                services[name] = ok(created, 201)["id"]
        listed = {s["name"]: s for s in ok(admin.get(f"{base}/services"))}
        assert listed["Secrétariat"]["secretariat"] is True
        assert listed["Social"]["secretariat"] is False
        people = {
            "alice": ("basic", "PMI"),
            "bob": ("basic", "PMI"),
            "carol": ("basic", "Social"),
            "sec": ("basic", "Secrétariat"),
            "inter": ("intervenant", "PMI"),
        }
        ids = {}
        for login, (role, service) in people.items():
            agent = {"login": login, "role": role, "services": [service]}
            if role != "intervenant":
                agent["password"] = PASSWORD
            ids[login] = ok(admin.post(f"{base}/agents", json=agent), 201)["id"]
        lieu = {"name": "Maison des familles", "address": "2 rue Haute, 75011 Paris"}
        lieu_id = ok(admin.post(f"{base}/lieux", json=lieu), 201)["id"]

        def motif(name: str, service: str, **more: object) -> int:
            fields = {"name": name, "service_id": services[service], **more}
            return ok(admin.post(f"{base}/motifs", json=fields), 201)["id"]

        pmi = motif("Consultation", "PMI", bookable_by="everyone")
        pmi_phone = motif("Consultation", "PMI", location_type="phone", bookable_by="everyone")
        social = motif("Aide sociale", "Social", location_type="phone")
    first = working_monday(3)
    found = Org(
        server, org, ids, services, lieu_id, pmi, pmi_phone, social, working_days(first, 40)
    )
    plage = {
        "motif_ids": [pmi, pmi_phone],
        "lieu_id": lieu_id,
        "first_day": first.isoformat(),
        "start_time": "09:00",
        "end_time": "12:00",
        "recurrence": {"frequency": "weekly", "weekdays": WEEKDAYS},
    }
    for who, writer in (("alice", "alice"), ("bob", "bob"), ("inter", "alice")):
        with found.api(writer) as api:
            ok(api.post(f"/agents/{ids[who]}/plages", json=plage), 201)
    yield found


def _refusal(answer: httpx.Response) -> tuple[str, str]:
    """(precondition code, description) of a CalDAV 403."""
    assert answer.status_code == 403, answer.text
    root = ET.fromstring(answer.content)
    codes = [c.tag.split("}")[1] for c in root if c.tag.startswith(f"{{{BOOKING_NS}}}")]
    return codes[0], root.findtext("{DAV:}responsedescription") or ""


def _rdv_ics(org: Org, uid: str, day: date, hour: int, minute: int = 0, **kw: object) -> str:
    extra = f"X-CALSERVER-MOTIF:{org.pmi}\r\nX-CALSERVER-LIEU:{org.lieu}"
    return event(uid, at(day, hour, minute), extra=extra, **kw)  # type: ignore[arg-type]


# -- 1. the agent sets the duration ------------------------------------------------


def test_api_books_and_moves_with_the_agents_duration(org: Org) -> None:
    day = org.day(0)
    alice = org.ids["alice"]
    with org.api("alice") as api, org.dav("alice") as dav:
        rdv = {"agent_id": alice, "motif_id": org.pmi, "lieu_id": org.lieu}
        long = ok(
            api.post("/rdvs", json={**rdv, "starts_at": f"{day}T09:00", "duration_in_min": 45}),
            201,
        )
        assert long["ends_at"].startswith(f"{day}T09:45")
        stored = dav.get(org.url("alice", f"rdv/{long['id']}.ics")).text
        assert f"DTEND;TZID=Europe/Paris:{day:%Y%m%d}T094500" in stored
        until = ok(
            api.post("/rdvs", json={**rdv, "starts_at": f"{day}T10:00", "ends_at": f"{day}T10:20"}),
            201,
        )
        assert until["ends_at"].startswith(f"{day}T10:20")
        # A move keeps the duration; duration_in_min or ends_at sets another.
        path = f"/agents/{alice}/rdvs/{long['id']}"
        moved = ok(api.patch(path, json={"starts_at": f"{day}T10:30"}))
        assert moved["ends_at"].startswith(f"{day}T11:15")
        shorter = ok(api.patch(path, json={"duration_in_min": 15}))
        assert (shorter["starts_at"][11:16], shorter["ends_at"][11:16]) == ("10:30", "10:45")
        stretched = ok(api.patch(path, json={"ends_at": f"{day}T11:00"}))
        assert stretched["ends_at"][11:16] == "11:00"
        # Refusals: off the 5-minute steps, past the plage's end, both ways given.
        before = ok(api.get(f"/agents/{alice}/rdvs", params={"from": str(day), "to": str(day)}))
        for body, status, code, words in (
            ({"duration_in_min": 47}, 422, "wrong-duration", "47 minutes is not one"),
            ({"ends_at": f"{day}T11:07"}, 422, "wrong-duration", "37 minutes is not one"),
            ({"duration_in_min": 120}, 422, "outside-plage", "would end at 12:30"),
            (
                {"duration_in_min": 20, "ends_at": f"{day}T11:00"},
                422,
                "invalid-value",
                "not both",
            ),
        ):
            answer = api.patch(path, json=body)
            assert answer.status_code == status, answer.text
            assert answer.json()["error"]["code"] == code
            assert words in answer.json()["error"]["message"]
        refused = api.post(
            "/rdvs", json={**rdv, "starts_at": f"{day}T11:45", "duration_in_min": 30 + 5}
        )
        assert refused.status_code == 422
        assert "after its plage d'ouverture (until 12:00)" in refused.json()["error"]["message"]
        after = ok(api.get(f"/agents/{alice}/rdvs", params={"from": str(day), "to": str(day)}))
        assert after == before


def test_caldav_dtend_and_duration_set_the_length(org: Org) -> None:
    day = org.day(1)
    with org.dav("alice") as dav, org.api("alice") as api:
        url = org.url("alice", "rdv/long.ics")
        assert (
            dav.put(url, content=_rdv_ics(org, "long", day, 9, minutes=50), headers=ICS).status_code
            == 201
        )
        listed = ok(
            api.get(f"/agents/{org.ids['alice']}/rdvs", params={"from": str(day), "to": str(day)})
        )
        assert [(r["starts_at"][11:16], r["ends_at"][11:16]) for r in listed] == [
            ("09:00", "09:50")
        ]
        by_duration = _rdv_ics(org, "dur", day, 10).replace(
            f"DTEND;TZID=Europe/Paris:{day:%Y%m%d}T103000", "DURATION:PT1H5M"
        )
        assert "DURATION:PT1H5M" in by_duration
        assert (
            dav.put(org.url("alice", "rdv/dur.ics"), content=by_duration, headers=ICS).status_code
            == 201
        )
        # Off the steps, or stretched past the plage: refused, the old version stays.
        code, words = _refusal(
            dav.put(
                org.url("alice", "rdv/dur.ics"),
                content=by_duration.replace("PT1H5M", "PT52M"),
                headers=ICS,
            )
        )
        assert (code, "52 minutes is not one" in words) == ("wrong-duration", True)
        code, words = _refusal(
            dav.put(url, content=_rdv_ics(org, "long", day, 11, minutes=90), headers=ICS)
        )
        assert code == "outside-plage" and "would end at 12:30" in words, words
        assert "T095000" in dav.get(url).text
        assert "DURATION:PT1H5M" in dav.get(org.url("alice", "rdv/dur.ics")).text


# -- 2. who searches which motifs ------------------------------------------------------


def test_search_scope_follows_services_roles_and_secretariat(org: Org) -> None:
    day = str(org.day(2))
    window = {"from": day, "to": day}
    for who, motif, status in (
        ("alice", org.pmi, 200),
        ("alice", org.social, 403),
        ("carol", org.social, 200),
        ("carol", org.pmi, 403),
        ("sec", org.pmi, 200),
        ("sec", org.social, 200),
        ("admin", org.social, 200),
    ):
        with org.api(who) as api:
            for path, params in (("/creneaux", window), ("/creneaux/next", {})):
                answer = api.get(path, params={"motif": motif, **params})
                assert answer.status_code == status, (who, path, answer.text)
                if status == 403:
                    error = answer.json()["error"]
                    assert error["code"] == "out-of-scope"
                    assert "Aide sociale" in error["message"] or "Consultation" in error["message"]
    with org.api("sec") as api:
        found = ok(api.get("/creneaux", params={"motif": org.pmi, **window}))["creneaux"]
        free = {a for c in found for a in c["agent_ids"]}
        assert free == {org.ids[w] for w in ("alice", "bob", "inter")}


def test_a_secretariat_member_sees_and_books_in_every_agenda(org: Org) -> None:
    day = org.day(3)
    with org.dav("sec") as dav, org.api("sec") as api:
        url = org.url("carol", "rdv/from-sec.ics")
        social = event("from-sec", at(day, 9), extra=f"X-CALSERVER-MOTIF:{org.social}")
        plage = {
            "motif_ids": [org.social],
            "first_day": str(day),
            "start_time": "09:00",
            "end_time": "10:00",
        }
        with org.api("carol") as carol:
            ok(carol.post(f"/agents/{org.ids['carol']}/plages", json=plage), 201)
        assert dav.put(url, content=social, headers=ICS).status_code == 201
        assert (
            dav.request("PROPFIND", org.url("alice", "rdv/"), headers={"Depth": "1"}).status_code
            == 207
        )
        ok(api.get(f"/agents/{org.ids['alice']}/rdvs"))
        # Plages stay the owner's (and admins') business.
        assert (
            dav.put(org.url("carol", "plages/x.ics"), content=social, headers=ICS).status_code
            == 403
        )


# -- 3. colleagues' absences: when, not what ----------------------------------------------


def _absence_ics(uid: str, day: date) -> str:
    extra = (
        "DESCRIPTION:Consultation chez le Dr Martin\r\nLOCATION:Hôpital Saint-Louis\r\n"
        "CATEGORIES:Santé"
    )
    return event(uid, at(day, 14), 60, "Rendez-vous médical", extra=extra)


def test_colleagues_read_absences_masked_over_caldav(org: Org) -> None:
    day = org.day(4)
    url = org.url("alice", "indisponibilites/medical.ics")
    with org.dav("alice") as alice:
        assert alice.put(url, content=_absence_ics("medical", day), headers=ICS).status_code == 201
        assert "Rendez-vous médical" in alice.get(url).text
    secrets = ("Rendez-vous médical", "Dr Martin", "Saint-Louis", "Santé")
    for who in ("bob", "sec"):
        with org.dav(who) as dav:
            item = dav.get(url)
            assert item.status_code == 200
            assert "SUMMARY:Indisponible" in item.text
            assert f"DTSTART;TZID=Europe/Paris:{day:%Y%m%d}T140000" in item.text
            whole = dav.get(org.url("alice", "indisponibilites/")).text
            report = dav.request(
                "REPORT",
                org.url("alice", "indisponibilites/"),
                headers={"Depth": "1", "Content-Type": "application/xml"},
                content=(
                    '<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
                    "<D:prop><D:getetag/><C:calendar-data/></D:prop><C:filter>"
                    '<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"/>'
                    "</C:comp-filter></C:filter></C:calendar-query>"
                ),
            )
            assert report.status_code == 207
            # The expanding query, which calserver answers from kept expansions.
            span = f'start="{day:%Y%m%d}T000000Z" end="{day + timedelta(days=1):%Y%m%d}T000000Z"'
            expanded = dav.request(
                "REPORT",
                org.url("alice", "indisponibilites/"),
                headers={"Depth": "1", "Content-Type": "application/xml"},
                content=(
                    '<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
                    f"<D:prop><C:calendar-data><C:expand {span}/></C:calendar-data></D:prop>"
                    '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
                    f"<C:time-range {span}/></C:comp-filter></C:comp-filter></C:filter>"
                    "</C:calendar-query>"
                ),
            )
            assert expanded.status_code == 207
            assert "SUMMARY:Indisponible" in expanded.text
            for text in (item.text, whole, report.text, expanded.text):
                assert not any(s in text for s in secrets), (who, text)
            # Read-only: no write, no delete, no new absence.
            assert (
                dav.put(url, content=_absence_ics("medical", day), headers=ICS).status_code == 403
            )
            assert dav.delete(url).status_code == 403
            new = org.url("alice", f"indisponibilites/by-{who}.ics")
            assert (
                dav.put(new, content=_absence_ics(f"by-{who}", day), headers=ICS).status_code == 403
            )
    # The caldav library, as a client would read it.
    client = caldav.DAVClient(url=org.server.dav, username="bob", password=PASSWORD)
    calendar = client.calendar(url=org.url("alice", "indisponibilites/"))
    summaries = {str(e.icalendar_component["SUMMARY"]) for e in calendar.events()}
    assert summaries == {"Indisponible"}
    with org.dav("carol") as carol:  # another service: nothing
        assert carol.get(url).status_code == 403
    with org.dav("admin") as admin, org.dav("alice") as alice:
        assert "Rendez-vous médical" in admin.get(url).text
        assert "Dr Martin" in alice.get(url).text


def test_colleagues_read_absences_masked_over_the_api(org: Org) -> None:
    day = org.day(5)
    alice = org.ids["alice"]
    path = f"/agents/{alice}/indisponibilites"
    absence = {"starts_at": f"{day}T14:00", "ends_at": f"{day}T15:00", "title": "Congé parental"}
    with org.api("alice") as own:
        created = ok(own.post(path, json=absence), 201)
        assert created["title"] == "Congé parental"
    with org.api("bob") as bob:
        listed = {e["id"]: e for e in ok(bob.get(path))}
        assert listed[created["id"]]["title"] == "Indisponible"
        assert listed[created["id"]]["starts_at"] == created["starts_at"]
        assert not any(e["title"] != "Indisponible" for e in listed.values())
        assert bob.post(path, json=absence).status_code == 403
        assert bob.delete(f"{path}/{created['id']}").status_code == 403
    with org.api("carol") as carol:
        assert carol.get(path).status_code == 404
    for who in ("alice", "admin"):
        with org.api(who) as api:
            titles = {e["id"]: e["title"] for e in ok(api.get(path))}
            assert titles[created["id"]] == "Congé parental"


# -- 4. an intervenant's agenda, managed by its service ------------------------------------


def test_an_intervenants_agendas_are_managed_by_its_service(org: Org) -> None:
    day = org.day(6)
    inter = org.ids["inter"]
    with org.dav("bob") as dav, org.api("bob") as api:
        absence = org.url("inter", "indisponibilites/away.ics")
        assert dav.put(absence, content=_absence_ics("away", day), headers=ICS).status_code == 201
        assert "Rendez-vous médical" in dav.get(absence).text  # a manager reads it whole
        rdv = org.url("inter", "rdv/by-bob.ics")
        assert dav.put(rdv, content=_rdv_ics(org, "by-bob", day, 9), headers=ICS).status_code == 201
        plage = event("extra", at(day, 15), 60, extra=f"X-CALSERVER-MOTIF:{org.pmi_phone}")
        assert (
            dav.put(org.url("inter", "plages/extra.ics"), content=plage, headers=ICS).status_code
            == 201
        )
        booked = ok(
            api.post(
                "/rdvs",
                json={"agent_id": inter, "motif_id": org.pmi, "lieu_id": org.lieu,
                      "starts_at": f"{day}T10:00", "duration_in_min": 20},
            ),
            201,
        )  # fmt: skip
        assert booked["ends_at"][11:16] == "10:20"
        ok(
            api.post(
                f"/agents/{inter}/indisponibilites",
                json={"starts_at": f"{day}T16:30", "ends_at": f"{day}T17:00"},
            ),
            201,
        )
        titles = {e["title"] for e in ok(api.get(f"/agents/{inter}/indisponibilites"))}
        assert "Rendez-vous médical" in titles
        assert dav.delete(org.url("inter", "plages/extra.ics")).status_code in (200, 204)
        # Nobody deletes the intervenant's agendas themselves.
        assert dav.delete(org.url("inter", "rdv/")).status_code == 403
    with org.dav("carol") as carol, org.api("carol") as api:
        assert carol.get(org.url("inter", "rdv/by-bob.ics")).status_code == 403
        assert api.get(f"/agents/{inter}/plages").status_code == 404
    # It receives nothing: no feed, even asked by an admin.
    with org.api("admin") as admin:
        for answer in (
            admin.get(f"/agents/{inter}/feed"),
            admin.post(f"/agents/{inter}/feed/rotate"),
        ):
            assert answer.status_code == 403, answer.text
            assert "intervenant receives nothing" in answer.json()["error"]["message"]


# -- 5. a plage without motifs --------------------------------------------------------------


def test_a_plain_clients_plage_is_for_agents_only(org: Org) -> None:
    day = org.day(7)
    with org.dav("alice") as dav:
        bare = event("bare", at(day, 14), 120, "Permanence")  # no motif, no lieu
        assert (
            dav.put(org.url("alice", "plages/bare.ics"), content=bare, headers=ICS).status_code
            == 201
        )
    params = {
        "motif": org.pmi_phone,
        "from": str(day),
        "to": str(day),
        "agents": str(org.ids["alice"]),
    }
    with org.api("alice") as api:
        agents_view = ok(api.get("/creneaux", params=params))["creneaux"]
        assert "14:00" in {c["starts_at"][11:16] for c in agents_view}
        public = ok(api.get("/creneaux", params={**params, "public": "true"}))["creneaux"]
        assert public and not any("14:00" <= c["starts_at"][11:16] < "16:00" for c in public)
        # A public_office motif needs the plage's lieu: a plage without one offers it nowhere.
        at_lieu = ok(api.get("/creneaux", params={**params, "motif": org.pmi}))["creneaux"]
        assert not any(c["starts_at"][11:16] >= "14:00" for c in at_lieu)
        # An agent books in it.
        rdv = {"agent_id": org.ids["alice"], "motif_id": org.pmi_phone, "starts_at": f"{day}T14:30"}
        ok(api.post("/rdvs", json=rdv), 201)
