"""The back office over real HTTP: the RDV page every feed event links to
(the URL read from a real Webcal feed), the login form through the API's
gate and throttle, the status form through the API's change, CSRF, and 404
for agents without rights.  One server per database for the module."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import caldav
import httpx
import icalendar
import pytest

from tests.conftest import Server, run_cli
from tests.dates import working_monday
from tests.protocol.pmi_office import Office, ok, set_up
from tests.protocol.visitor import Visitor, text_of


@dataclass
class Back:
    office: Office
    carol: int  # an agent of another service: no right on alice's agenda
    feed_url: str


@pytest.fixture(scope="module")
def back(module_server: Server) -> Iterator[Back]:
    office = set_up(module_server)
    with office.client() as admin:
        carol = ok(
            admin.post(
                f"/organisations/{office.org}/agents",
                json={"login": "carol", "services": ["Social"], "password": "carol-password"},
            ),
            201,
        )["id"]
    with office.client("alice") as alice:
        links = ok(alice.post(f"/agents/{office.alice}/feed/rotate"))
    yield Back(office, carol, links["https"])


def _book(back: Back, weekday: int, hour_minute: str) -> tuple[dict, dict, str]:
    """An RDV in alice's agenda with a usager of full details, and the URL
    the feed gives its event."""
    office = back.office
    with office.client() as admin:
        usager = ok(
            admin.post(
                f"/organisations/{office.org}/usagers",
                json={
                    "first_name": "Dominique",
                    "last_name": f"Lefèvre{weekday}{hour_minute.replace(':', '')}",
                    "email": f"d{weekday}{hour_minute.replace(':', '')}@example.org",
                    "phone": "06 11 22 33 44",
                    "address": "3 rue des Lilas, 75020 Paris",
                },
            ),
            201,
        )
    day = working_monday(2) + timedelta(days=weekday)
    with office.client("alice") as alice:
        rdv = ok(
            alice.post(
                "/rdvs",
                json={
                    "agent_id": office.alice,
                    "motif_id": office.motif,
                    "lieu_id": office.lieu,
                    "starts_at": f"{max(day, office.day).isoformat()}T{hour_minute}",
                    "usager_ids": [usager["id"]],
                },
            ),
            201,
        )
    feed = icalendar.Calendar.from_ical(httpx.get(back.feed_url).content)
    urls = [
        str(e["URL"])
        for e in feed.walk("VEVENT")
        if e.decoded("DTSTART").isoformat()[:16] == rdv["starts_at"][:16]
    ]
    (url,) = urls
    path = httpx.URL(url).path
    assert re.fullmatch(r"/backoffice/rdvs/[0-9a-f-]{36}", path)
    return usager, rdv, path


def _logged_in(back: Back, login: str) -> Visitor:
    visitor = Visitor(back.office.server)
    visitor.get("/backoffice/login")
    done = visitor.post(
        "/backoffice/login", {"identifiant": login, "mot_de_passe": f"{login}-password"}
    )
    assert done.status_code == 303, done.text
    return visitor


def _status(back: Back, uid: str) -> str:
    with back.office.client("alice") as alice:
        return ok(alice.get(f"/agents/{back.office.alice}/rdvs/{uid}"))["status"]


def test_the_feed_link_asks_for_a_login_then_shows_the_rdv(back: Back) -> None:
    usager, rdv, path = _book(back, 0, "09:00")
    with Visitor(back.office.server) as visitor:
        first = visitor.get(path)
        assert first.status_code == 303
        assert first.headers["Location"] == f"/backoffice/login?suite={path}"
        form = visitor.get(first.headers["Location"])
        assert form.status_code == 200 and 'autocomplete="current-password"' in form.text
        before = visitor.client.cookies["calserver_session"]
        wrong = visitor.post(
            "/backoffice/login",
            {"identifiant": "alice", "mot_de_passe": "nope", "suite": path},
        )
        assert wrong.status_code == 422 and "incorrect" in text_of(wrong)
        done = visitor.post(
            "/backoffice/login",
            {"identifiant": "alice", "mot_de_passe": "alice-password", "suite": path},
        )
        assert done.status_code == 303 and done.headers["Location"] == path
        cookie = done.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        after = visitor.client.cookies["calserver_session"]
        assert after != before  # a new session at login
        assert "alice" not in after and "password" not in after
        shown = visitor.get(path)
        assert shown.status_code == 200
        said = text_of(shown)
        for expected in (
            "Consultation",
            "9h00",
            "Mairie annexe",
            "Dominique",
            usager["last_name"],
            usager["email"],
            "06 11 22 33 44",
            "3 rue des Lilas, 75020 Paris",
            "À venir / à renseigner",
            "Enregistrer le statut",
        ):
            assert expected in said, expected
        assert shown.headers["Cache-Control"] == "no-store"
    # An open redirect is not one: only back-office paths are followed.
    with Visitor(back.office.server) as visitor:
        visitor.get("/backoffice/login")
        done = visitor.post(
            "/backoffice/login",
            {"identifiant": "alice", "mot_de_passe": "alice-password",
             "suite": "//evil.example/backoffice/"},
        )  # fmt: skip
        assert done.headers["Location"] == "/backoffice/"


def test_the_status_form_changes_the_rdv_everywhere(back: Back) -> None:
    _, rdv, path = _book(back, 0, "09:30")
    with _logged_in(back, "alice") as visitor:
        visitor.get(path)
        assert visitor.post(path + "/statut", {"statut": "seen"}, csrf="").status_code == 403
        assert visitor.post(path + "/statut", {"statut": "seen"}, csrf="0" * 40).status_code == 403
        assert _status(back, rdv["id"]) == "unknown"
        assert visitor.post(path + "/statut", {"statut": "vu"}).status_code == 422
        done = visitor.post(path + "/statut", {"statut": "seen"})
        assert done.status_code == 303 and done.headers["Location"] == f"{path}?fait=statut"
        page = text_of(visitor.get(done.headers["Location"]))
        assert "Statut enregistré" in page and "Statut Présent (vu)" in page
    assert _status(back, rdv["id"]) == "seen"
    with caldav.DAVClient(
        back.office.server.dav, username="alice", password="alice-password"
    ) as client:
        calendar = client.calendar(url=f"{back.office.server.dav}alice/rdv/")
        text = calendar.event_by_uid(rdv["id"]).data
    assert "X-CALSERVER-STATUS:seen" in text


def test_agents_without_rights_get_404(back: Back) -> None:
    _, rdv, path = _book(back, 1, "09:00")
    with _logged_in(back, "carol") as carol:
        assert carol.get(path).status_code == 404
        assert carol.get("/backoffice/").status_code == 200  # a form: a valid CSRF token
        assert carol.post(path + "/statut", {"statut": "revoked"}).status_code == 404
        assert carol.get("/backoffice/rdvs/" + "0" * 8 + path[-28:]).status_code == 404
        assert carol.get("/backoffice/rdvs/not-an-id").status_code == 404
    assert _status(back, rdv["id"]) == "unknown"
    # bob shares alice's service: he reads and writes her RDVs.
    with _logged_in(back, "bob") as bob:
        assert bob.get(path).status_code == 200
        assert bob.post(path + "/statut", {"statut": "revoked"}).status_code == 303
    assert _status(back, rdv["id"]) == "revoked"


def test_logout_and_a_password_reset_end_the_session(back: Back) -> None:
    _, _, path = _book(back, 1, "09:30")
    with _logged_in(back, "alice") as visitor:
        assert visitor.get(path).status_code == 200
        assert visitor.post("/backoffice/logout").status_code == 303
        assert visitor.get(path).status_code == 303
    with back.office.client() as admin:
        ok(
            admin.post(
                f"/organisations/{back.office.org}/agents",
                json={"login": "dave", "services": ["PMI"], "password": "dave-password"},
            ),
            201,
        )
    with _logged_in(back, "dave") as visitor:
        assert visitor.get(path).status_code == 200
        reset = run_cli(
            back.office.server.database_url,
            "set-password",
            "dave",
            "--password-stdin",
            stdin="another-dave-password\n",
        )
        assert reset.returncode == 0, reset.stderr
        assert visitor.get(path).status_code == 303


def test_wrong_passwords_meet_the_throttle(back: Back) -> None:
    with Visitor(back.office.server) as visitor:
        visitor.get("/backoffice/login")
        for _ in range(10):
            wrong = visitor.post("/backoffice/login", {"identifiant": "bob", "mot_de_passe": "x"})
            assert wrong.status_code == 422
        refused = visitor.post("/backoffice/login", {"identifiant": "bob", "mot_de_passe": "x"})
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert "Trop de mots de passe" in text_of(refused)
    # The owner elsewhere still gets in.
    _logged_in(back, "bob").client.close()
