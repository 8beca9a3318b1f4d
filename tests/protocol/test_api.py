"""The JSON API over real HTTP, and its agreement with CalDAV: same objects,
same rules, same rights.

The tests share one server per database (``module_server``): each has an
office of its own (agents under logins of that test, a lieu, a motif and a
usager of its own in the server's organisation), so what one test books,
disables or sets is nobody else's."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import caldav
import caldav.lib.error
import httpx
import icalendar
import pytest

from tests.conftest import ADMIN_PASSWORD, Server
from tests.dates import at, holiday_on_a_weekday, working_monday
from tests.ics import event

API = "/api/v1"
PARIS = ZoneInfo("Europe/Paris")
# A Monday of an ordinary week ahead (no public holiday, no DST switch), as the
# API reads days; MONDAY_DAY is the same day as a date.
MONDAY_DAY = working_monday()
MONDAY = MONDAY_DAY.isoformat()
TUESDAY = (MONDAY_DAY + timedelta(days=1)).isoformat()


def _paris(day_offset: int, hour: int) -> datetime:
    """``hour`` o'clock in Paris, ``day_offset`` days after MONDAY."""
    return at(MONDAY_DAY + timedelta(days=day_offset), hour).replace(tzinfo=PARIS)


@dataclass
class Office:
    server: Server
    org: int
    alice: int
    bob: int
    lieu: int
    motif: int
    usager: int
    logins: dict[str, str]  # alice, bob, carol -> this test's login; admin -> admin

    def auth(self, who: str = "admin") -> tuple[str, str]:
        login = self.logins[who]
        return login, ADMIN_PASSWORD if who == "admin" else f"{login}-password"

    def client(self, who: str = "admin") -> httpx.Client:
        return httpx.Client(base_url=self.server.url + API, auth=self.auth(who), timeout=30)

    def dav(self, who: str, rest: str = "") -> str:
        """The DAV URL of ``rest`` under the home of ``who``."""
        return self.server.dav + f"{self.logins[who]}/{rest}"

    def dav_client(self, who: str) -> caldav.DAVClient:
        login, password = self.auth(who)
        return caldav.DAVClient(url=self.server.dav, username=login, password=password)


def _ok(answer: httpx.Response, status: int = 200) -> dict:
    assert answer.status_code == status, answer.text
    return answer.json()


@pytest.fixture
def office(module_server: Server) -> Iterator[Office]:
    """An office of this test's own, set up through the API in the server's
    organisation: two agents of PMI and one of Social, a lieu, a 30-minute
    public_office motif, a usager, and a weekly plage for alice Monday-Friday
    09:00-12:00 from MONDAY."""
    server = module_server
    suffix = secrets.token_hex(4)
    logins = {who: f"{who}-{suffix}" for who in ("alice", "bob", "carol")} | {"admin": "admin"}
    with httpx.Client(base_url=server.url + API, auth=("admin", ADMIN_PASSWORD)) as admin:
        org = _ok(admin.get("/me"))["organisations"][0]["id"]
        ids = {}
        for who, service in (("alice", "PMI"), ("bob", "PMI"), ("carol", "Social")):
            login = logins[who]
            new = {"login": login, "services": [service], "password": f"{login}-password"}
            ids[who] = _ok(admin.post(f"/organisations/{org}/agents", json=new), 201)["id"]
        pmi = next(
            s for s in _ok(admin.get(f"/organisations/{org}/services")) if s["name"] == "PMI"
        )
        lieu = _ok(
            admin.post(
                f"/organisations/{org}/lieux",
                json={"name": "Mairie annexe", "address": "1 place de la Mairie, 75011 Paris"},
            ),
            201,
        )["id"]
        motif = _ok(
            admin.post(
                f"/organisations/{org}/motifs",
                json={
                    "name": f"Consultation {suffix}",
                    "service_id": pmi["id"],
                    "bookable_by": "everyone",
                },
            ),
            201,
        )["id"]
        usager = _ok(
            admin.post(
                f"/organisations/{org}/usagers",
                json={
                    "first_name": "Camille",
                    "last_name": "Durand",
                    "email": f"c-{suffix}@example.org",
                },
            ),
            201,
        )["id"]
        plage = {
            "motif_ids": [motif],
            "lieu_id": lieu,
            "first_day": MONDAY,
            "start_time": "09:00",
            "end_time": "12:00",
            "recurrence": {"frequency": "weekly", "weekdays": ["MO", "TU", "WE", "TH", "FR"]},
        }
        _ok(admin.post(f"/agents/{ids['alice']}/plages", json=plage), 201)
    yield Office(server, org, ids["alice"], ids["bob"], lieu, motif, usager, logins)


def _slots(office: Office, day: str = MONDAY, who: str = "alice") -> list[str]:
    with office.client(who) as client:
        answer = _ok(
            client.get("/creneaux", params={"motif": office.motif, "from": day, "to": day})
        )
    return [c["starts_at"][11:16] for c in answer["creneaux"]]


def _book(office: Office, at: str, who: str = "alice") -> httpx.Response:
    with office.client(who) as client:
        return client.post(
            "/rdvs",
            json={
                "agent_id": office.alice,
                "motif_id": office.motif,
                "lieu_id": office.lieu,
                "starts_at": at,
                "usager_ids": [office.usager],
            },
        )


def _rdv_ids(office: Office, day: str = MONDAY) -> list[str]:
    """What alice's agenda holds on ``day``, read back through the API."""
    with office.client("alice") as alice:
        listed = _ok(alice.get(f"/agents/{office.alice}/rdvs", params={"from": day, "to": day}))
    return [r["id"] for r in listed]


def test_openapi_and_errors_speak_json(office: Office) -> None:
    document = httpx.get(office.server.url + API + "/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert "/creneaux" in document["paths"] and "MotifIn" in document["components"]["schemas"]
    anonymous = httpx.get(office.server.url + API + "/me")
    assert anonymous.status_code == 401 and "Basic" in anonymous.headers["WWW-Authenticate"]
    assert anonymous.json()["error"]["code"] == "unauthenticated"
    with office.client() as admin:
        # Other tests' offices share the organisation: what it holds before
        # is what it must still hold after the refused requests.
        motifs_before = _ok(admin.get(f"/organisations/{office.org}/motifs"))
        lieux_before = _ok(admin.get(f"/organisations/{office.org}/lieux"))
        assert office.motif in [m["id"] for m in motifs_before]
        bad_delays = admin.post(
            f"/organisations/{office.org}/motifs",
            json={"name": "X", "service_id": 1, "min_delay_minutes": 600, "max_delay_minutes": 60},
        )
        assert bad_delays.status_code == 422
        assert "maximum booking delay" in bad_delays.json()["error"]["message"]
        unknown_field = admin.post(f"/organisations/{office.org}/lieux", json={"nom": "x"})
        assert unknown_field.status_code == 422
        broken = admin.post(
            f"/organisations/{office.org}/lieux",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
        assert broken.status_code == 400 and broken.json()["error"]["code"] == "invalid-json"
        assert _ok(admin.get(f"/organisations/{office.org}/motifs")) == motifs_before
        assert _ok(admin.get(f"/organisations/{office.org}/lieux")) == lieux_before


def test_basic_agents_read_but_do_not_administer(office: Office) -> None:
    with office.client("alice") as alice:
        lieux = _ok(alice.get(f"/organisations/{office.org}/lieux"))
        assert office.lieu in [lieu["id"] for lieu in lieux]
        refused = alice.post(
            f"/organisations/{office.org}/lieux", json={"name": "L", "address": "A"}
        )
        assert refused.status_code == 403
        assert _ok(alice.get(f"/organisations/{office.org}/lieux")) == lieux
        assert _ok(
            alice.post(
                f"/organisations/{office.org}/usagers", json={"first_name": "A", "last_name": "B"}
            ),
            201,
        )["id"]


def test_a_microsoft_365_connection_needs_the_servers_key(office: Office) -> None:
    """This server has no ``[m365] key``: a secret cannot be stored, nothing is kept."""
    url = f"/organisations/{office.org}/m365/connection"
    with office.client() as admin:
        refused = admin.put(url, json={"tenant_id": "t", "client_id": "c", "client_secret": "s"})
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "m365-not-configured"
        assert admin.get(url).status_code == 404


def test_plage_from_the_api_is_a_vevent_over_caldav_and_back(office: Office) -> None:
    dav = office.dav_client("alice")
    plages = dav.calendar(url=office.dav("alice", "plages/"))
    (stored,) = plages.events()
    vevent = icalendar.Calendar.from_ical(stored.data).walk("VEVENT")[0]
    assert vevent["RRULE"]["FREQ"] == ["WEEKLY"] and vevent["TRANSP"] == "TRANSPARENT"
    assert str(vevent["X-CALSERVER-MOTIF"]) == str(office.motif)
    assert vevent["DTSTART"].dt.strftime("%H:%M") == "09:00"
    # A plage written by a plain client (no motif) shows in the API too.
    plages.save_event(
        dtstart=_paris(5, 10),
        dtend=_paris(5, 11),
        summary="Samedi",
        uid="saturday-plage",
    )
    with office.client("alice") as alice:
        listed = _ok(alice.get(f"/agents/{office.alice}/plages"))
    assert {p["id"] for p in listed} >= {"saturday-plage", str(vevent["UID"])}


def test_booking_takes_the_slot_and_a_second_booking_gets_409(office: Office) -> None:
    assert _slots(office)[:3] == ["09:00", "09:30", "10:00"]
    rdv = _ok(_book(office, f"{MONDAY}T09:30"), 201)
    assert rdv["status"] == "unknown" and rdv["starts_at"].startswith(f"{MONDAY}T09:30")
    assert "09:30" not in _slots(office)
    again = _book(office, f"{MONDAY}T09:30", who="bob")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "slot-unavailable"
    assert "already taken" in again.json()["error"]["message"]
    with office.client("alice") as alice:
        listed = _ok(
            alice.get(f"/agents/{office.alice}/rdvs", params={"from": MONDAY, "to": MONDAY})
        )
    assert [r["id"] for r in listed] == [rdv["id"]]


def test_rules_refuse_with_readable_reasons(office: Office) -> None:
    outside = _book(office, f"{MONDAY}T14:00")
    assert outside.status_code == 422 and outside.json()["error"]["code"] == "outside-plage"
    assert "plage d'ouverture" in outside.json()["error"]["message"]
    holiday_day = holiday_on_a_weekday(MONDAY_DAY).isoformat()
    holiday = _book(office, f"{holiday_day}T09:00")
    assert holiday.json()["error"]["code"] == "holiday"
    assert _rdv_ids(office) == [] and _rdv_ids(office, holiday_day) == []


def test_move_and_cancel_keep_sequence_and_the_vevent(office: Office) -> None:
    rdv = _ok(_book(office, f"{MONDAY}T09:00"), 201)
    with office.client("alice") as alice:
        moved = _ok(
            alice.patch(
                f"/agents/{office.alice}/rdvs/{rdv['id']}", json={"starts_at": f"{MONDAY}T11:00"}
            )
        )
        assert moved["starts_at"].startswith(f"{MONDAY}T11:00")
        assert moved["sequence"] == rdv["sequence"] + 1
        assert "09:00" in _slots(office) and "11:00" not in _slots(office)
        cancelled = _ok(alice.delete(f"/agents/{office.alice}/rdvs/{rdv['id']}"))
        assert cancelled["status"] == "revoked" and cancelled["sequence"] == moved["sequence"] + 1
    assert "11:00" in _slots(office)
    dav = office.dav_client("alice")
    (kept,) = dav.calendar(url=office.dav("alice", "rdv/")).events()
    vevent = icalendar.Calendar.from_ical(kept.data).walk("VEVENT")[0]
    assert vevent["STATUS"] == "CANCELLED" and int(vevent["SEQUENCE"]) == cancelled["sequence"]
    assert "LAST-MODIFIED" in vevent
    suffix = office.logins["alice"].removeprefix("alice-")
    assert f"mailto:c-{suffix}@example.org" in str(vevent["ATTENDEE"])


def test_absence_over_caldav_removes_slots_and_blocks_a_move(office: Office) -> None:
    rdv = _ok(_book(office, f"{MONDAY}T09:00"), 201)
    dav = office.dav_client("alice")
    absences = dav.calendar(url=office.dav("alice", "indisponibilites/"))
    absences.save_event(
        dtstart=_paris(0, 10),
        dtend=_paris(0, 11),
        summary="Formation", uid="formation",
    )  # fmt: skip
    assert _slots(office) == ["09:30", "11:00", "11:30"]
    agenda = dav.calendar(url=office.dav("alice", "rdv/"))
    (event,) = agenda.events()
    before = event.data
    vevent = event.icalendar_component
    vevent["DTSTART"].dt = vevent["DTSTART"].dt.replace(hour=10)
    vevent["DTEND"].dt = vevent["DTEND"].dt.replace(hour=10, minute=30)
    with pytest.raises(caldav.lib.error.DAVError):  # the library reports the 403
        event.save()  # what a calendar client's drag-and-drop does
    answer = httpx.put(
        office.dav("alice", f"rdv/{rdv['id']}.ics"),
        content=event.icalendar_instance.to_ical(),
        auth=office.auth("alice"),
        headers={"Content-Type": "text/calendar"},
    )
    assert answer.status_code == 403
    assert "urn:calserver:booking" in answer.text and "agent-unavailable" in answer.text
    assert "absent" in answer.text
    (unchanged,) = dav.calendar(url=office.dav("alice", "rdv/")).events()
    assert unchanged.data == before


def test_other_service_cannot_book_in_alices_agenda(office: Office) -> None:
    refused = _book(office, f"{MONDAY}T09:00", who="carol")
    assert refused.status_code == 404
    assert _slots(office)[0] == "09:00"
    assert _rdv_ids(office) == []


def test_next_availability_skips_taken_slots(office: Office) -> None:
    for time in ("09:00", "09:30", "10:00", "10:30", "11:00", "11:30"):
        _ok(_book(office, f"{MONDAY}T{time}"), 201)
    with office.client("alice") as alice:
        found = _ok(alice.get("/creneaux/next", params={"motif": office.motif, "from": MONDAY}))
    assert found["creneau"]["starts_at"].startswith(f"{TUESDAY}T09:00")


def test_next_availability_sees_busy_time_past_a_windows_end(office: Office) -> None:
    # The search looks a day ahead first: from Sunday 11:40, to Monday 11:40.
    # The 11:30 slot starts inside that window; an absence from 11:45, after
    # the window's end, takes it all the same.
    for time in ("09:00", "09:30", "10:00", "10:30", "11:00"):
        _ok(_book(office, f"{MONDAY}T{time}"), 201)
    absences = office.dav_client("alice").calendar(url=office.dav("alice", "indisponibilites/"))
    absences.save_event(
        dtstart=_paris(0, 11) + timedelta(minutes=45), dtend=_paris(0, 12), uid="late"
    )
    sunday = (MONDAY_DAY - timedelta(days=1)).isoformat()
    with office.client("alice") as alice:
        params = {"motif": office.motif, "from": f"{sunday}T11:40"}
        found = _ok(alice.get("/creneaux/next", params=params))
    assert found["creneau"]["starts_at"].startswith(f"{TUESDAY}T09:00")


def test_opaque_events_of_other_calendars_block_unless_turned_off(office: Office) -> None:
    dav = office.dav_client("alice")
    perso = dav.principal().make_calendar(name="Perso", cal_id="perso")
    perso.save_event(
        dtstart=_paris(0, 9),
        dtend=_paris(0, 10),
        summary="Dentiste",
        uid="busy",
    )
    perso.save_event(
        dtstart=_paris(0, 11),
        dtend=_paris(0, 12),
        summary="Pour info",
        uid="free",
        transp="TRANSPARENT",
    )
    assert _slots(office) == ["10:00", "10:30", "11:00", "11:30"]
    with office.client("alice") as alice:
        settings = {"other_calendars_block": False}
        _ok(alice.patch(f"/organisations/{office.org}/agents/{office.alice}", json=settings))
    assert _slots(office)[:2] == ["09:00", "09:30"]


def test_a_move_into_another_agenda_is_checked_there(office: Office) -> None:
    rdv = _ok(_book(office, f"{MONDAY}T09:00"), 201)
    source = office.dav("alice", f"rdv/{rdv['id']}.ics")
    destination = office.dav("bob", f"rdv/{rdv['id']}.ics")
    admin = ("admin", ADMIN_PASSWORD)
    before = httpx.get(source, auth=admin)
    moved = httpx.request("MOVE", source, auth=admin, headers={"Destination": destination})
    assert moved.status_code == 403 and "outside-plage" in moved.text  # bob has no plage
    after = httpx.get(source, auth=office.auth("alice"))
    assert (after.status_code, after.text) == (200, before.text)
    assert httpx.get(destination, auth=admin).status_code == 404
    assert _rdv_ids(office) == [rdv["id"]]


def test_an_rdv_sharing_an_absences_uid_is_still_checked_against_it(office: Office) -> None:
    absence = event("shared-uid", at(MONDAY_DAY, 9), minutes=60)
    auth = office.auth("alice")
    url = office.dav("alice", "indisponibilites/a.ics")
    assert httpx.put(url, content=absence.encode(), auth=auth).status_code == 201
    extra = f"X-CALSERVER-MOTIF:{office.motif}\r\nX-CALSERVER-LIEU:{office.lieu}"
    rdv = event("shared-uid", at(MONDAY_DAY, 9), extra=extra)
    answer = httpx.put(office.dav("alice", "rdv/r.ics"), content=rdv.encode(), auth=auth)
    assert answer.status_code == 403 and "agent-unavailable" in answer.text
    assert httpx.get(office.dav("alice", "rdv/r.ics"), auth=auth).status_code == 404
    assert httpx.get(url, auth=auth).text.count("BEGIN:VEVENT") == 1  # the absence stays
    assert _rdv_ids(office) == []


def test_odd_parameters_get_422_not_500(office: Office) -> None:
    with office.client("alice") as alice:
        for params in (
            {"motif": "²", "from": MONDAY, "to": MONDAY},
            {"motif": "99999999999999999999", "from": MONDAY, "to": MONDAY},
            {"motif": office.motif, "from": "0001-01-01", "to": MONDAY},
            {"motif": office.motif, "from": MONDAY, "to": "2027-02-30"},
        ):
            assert alice.get("/creneaux", params=params).status_code == 422, params
        far = alice.get("/creneaux/next", params={"motif": office.motif, "from": "9999-12-01"})
        assert far.status_code == 422
        plage = {"motif_ids": [office.motif], "lieu_id": office.lieu, "first_day": "2027-13-45",
                 "start_time": "09:00", "end_time": "10:00"}  # fmt: skip
        assert alice.post(f"/agents/{office.alice}/plages", json=plage).status_code == 422
        assert len(_ok(alice.get(f"/agents/{office.alice}/plages"))) == 1
        assert alice.get("/agents/99999999999999999999/rdvs").status_code == 422


def test_a_disabled_motif_cannot_be_booked(office: Office) -> None:
    with office.client() as admin:
        _ok(
            admin.patch(
                f"/organisations/{office.org}/motifs/{office.motif}", json={"enabled": False}
            )
        )
    refused = _book(office, f"{MONDAY}T09:00")
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "unknown-motif"
    assert _rdv_ids(office) == []


def test_an_rdv_written_by_a_client_is_managed_by_uid_in_the_api(office: Office) -> None:
    extra = f"X-CALSERVER-MOTIF:{office.motif}\r\nX-CALSERVER-LIEU:{office.lieu}"
    body = event("client-uid", at(MONDAY_DAY, 9), extra=extra).encode()
    url = office.dav("alice", "rdv/named-by-the-client.ics")
    assert httpx.put(url, content=body, auth=office.auth("alice")).status_code == 201
    with office.client("alice") as alice:
        assert _ok(alice.get(f"/agents/{office.alice}/rdvs/client-uid"))["status"] == "unknown"
        assert _ok(alice.delete(f"/agents/{office.alice}/rdvs/client-uid"))["status"] == "revoked"
    assert "STATUS:CANCELLED" in httpx.get(url, auth=office.auth("alice")).text
