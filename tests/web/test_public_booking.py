"""The public booking page over real HTTP (a server process, its SMTP server
aiosmtpd on loopback): the journey, what it refuses, and what it never shows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import icalendar
import pytest

from tests.conftest import ADMIN_PASSWORD
from tests.notifications.fakes import wait_for
from tests.web import journey
from tests.web.office import AFTER, BEFORE, Stack, ok, running, slot, take_slot


@pytest.fixture(scope="module")
def stack(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running(module_database_url, tmp_path_factory.mktemp("public")) as found:
        yield found


def _mail(stack: Stack, address: str, count: int = 1):  # type: ignore[no-untyped-def]
    return wait_for(
        lambda: (m := journey.verifications(stack.smtp.mailbox, address)) and len(m) >= count and m
    )[-1]


def test_the_whole_journey_books_into_the_agents_agenda(stack: Stack) -> None:
    office = stack.office
    email = "journey@example.org"
    with httpx.Client(follow_redirects=False, timeout=30) as client:
        home = client.get(office.url)
        assert home.status_code == 200
        assert f"/services/{office.service}" in home.text
        service = client.get(f"{office.url}/services/{office.service}")
        assert f"/motifs/{office.motif}" in service.text
        assert f"/motifs/{office.phone_motif}" in service.text
        assert f"/motifs/{office.agents_motif}" not in service.text  # agents only
        lieux = client.get(f"{office.url}/motifs/{office.motif}")
        assert f"lieu={office.lieu}" in lieux.text
        assert f"lieu={office.closed_lieu}" not in lieux.text  # disabled
        assert "Prochaine disponibilité" in lieux.text
        week = client.get(
            f"{office.url}/motifs/{office.motif}/creneaux",
            params={"lieu": office.lieu, "semaine": office.day.isoformat()},
        )
        wanted = slot(office.day, "09:30")
        assert f"debut={wanted}" in week.text
        instructions = client.get(
            f"{office.url}/motifs/{office.motif}/rdv", params={"lieu": office.lieu, "debut": wanted}
        )
        assert "justificatif de domicile" in instructions.text  # BEFORE, escaped
        asked = journey.ask(client, office.url, office.motif, wanted, office.lieu, email=email)
        assert asked.status_code == 303, asked.text[:500]
        request_url = office.server.url + asked.headers["Location"]
        code, link = journey.code_and_link(_mail(stack, email))
        assert link.startswith(office.server.url + f"/prendre-rdv/{office.slug}/demandes/")
        done = journey.type_code(client, request_url, code)
        assert done.status_code == 303, done.text[:500]
        confirmation = client.get(office.server.url + done.headers["Location"])
        assert confirmation.status_code == 200
        assert "Votre rendez-vous est confirmé" in confirmation.text
        assert "10 minutes avant" in confirmation.text and "01 23 45 67 89" in confirmation.text
        ics = client.get(f"{office.url}/rendez-vous.ics")
        assert ics.headers["Content-Type"].startswith("text/calendar")
        event = icalendar.Calendar.from_ical(ics.content).walk("VEVENT")[0]
        assert event["DTSTART"].dt.astimezone(UTC).hour in (8, 7)  # 09:30 Paris
    with office.admin() as admin:
        usagers = ok(admin.get(f"/organisations/{office.org}/usagers"))
        usager = next(u for u in usagers if u["email"] == email)
        assert usager["first_name"] == "Camille" and usager["phone"] == "06 12 34 56 78"
        found = []
        for agent in office.agents.values():
            found += ok(
                admin.get(
                    f"/agents/{agent}/rdvs",
                    params={"from": office.day.isoformat(), "to": office.day.isoformat()},
                )
            )
        booked = [r for r in found if usager["id"] in r["usager_ids"]]
        assert len(booked) == 1 and booked[0]["starts_at"].startswith(wanted)
    assert BEFORE and AFTER


def test_the_link_confirms_in_another_browser_once(stack: Stack) -> None:
    office = stack.office
    email = "link@example.org"
    wanted = slot(office.day, "10:00")
    with httpx.Client(timeout=30) as asking:
        assert (
            journey.ask(
                asking, office.url, office.motif, wanted, office.lieu, email=email
            ).status_code
            == 303
        )
    _, link = journey.code_and_link(_mail(stack, email))
    with httpx.Client(timeout=30) as other:
        page = other.get(link)
        assert page.status_code == 200 and "Confirmer mon rendez-vous" in page.text
        answer = other.post(link, data={"csrf": journey.csrf(page)}, follow_redirects=True)
        assert "Votre rendez-vous est confirmé" in answer.text
        again = other.post(link, data={"csrf": journey.csrf(page)}, follow_redirects=True)
        assert "Votre rendez-vous est confirmé" in again.text  # a double click books once
    with httpx.Client(timeout=30) as stranger:
        assert stranger.get(link[:-3] + "xyz").status_code == 404
        assert stranger.get(f"{office.url}/rendez-vous").status_code == 404


def test_agent_only_motif_and_disabled_lieu_are_refused(stack: Stack) -> None:
    office = stack.office
    wanted = slot(office.day, "11:00")
    with httpx.Client(timeout=30) as client:
        assert client.get(f"{office.url}/motifs/{office.agents_motif}").status_code == 404
        assert client.get(f"{office.url}/motifs/{office.agents_motif}/creneaux").status_code == 404
        closed = {"lieu": office.closed_lieu, "semaine": office.day.isoformat()}
        assert (
            client.get(f"{office.url}/motifs/{office.motif}/creneaux", params=closed).status_code
            == 404
        )
        form = client.get(
            f"{office.url}/motifs/{office.motif}/identite",
            params={"lieu": office.lieu, "debut": wanted},
        )
        token = journey.csrf(form)
        for motif, lieu in ((office.agents_motif, office.lieu), (office.motif, office.closed_lieu)):
            data = {
                **journey.identity(email="refused@example.org"),
                "lieu": str(lieu),
                "debut": wanted,
                "csrf": token,
            }
            assert (
                client.post(f"{office.url}/motifs/{motif}/identite", data=data).status_code == 404
            )
    assert stack.smtp.mailbox.to("refused@example.org") == []


def test_slots_outside_the_delays_or_the_grid_are_refused(stack: Stack) -> None:
    office = stack.office
    soon = datetime.now(UTC) + timedelta(minutes=5)
    far = office.day + timedelta(days=200)
    with httpx.Client(timeout=30) as client:
        for wanted in (
            soon.astimezone().strftime("%Y-%m-%dT%H:%M"),
            slot(far, "09:00"),  # past the 3 months of the motif
            slot(office.day, "09:10"),  # off the 30-minute grid
            slot(office.day, "13:00"),  # outside the plage
            "2999-01-01T09:00",
        ):
            page = client.get(
                f"{office.url}/motifs/{office.motif}/identite",
                params={"lieu": office.lieu, "debut": wanted},
            )
            assert page.status_code == 409, (wanted, page.text[:300])
            assert "plus disponible" in page.text
    assert stack.smtp.mailbox.to("camille@example.org") == []


def test_a_forged_csrf_token_is_refused_and_sends_nothing(stack: Stack) -> None:
    office = stack.office
    wanted = slot(office.day, "11:30")
    with httpx.Client(timeout=30) as client:
        client.get(office.url)
        data = {
            **journey.identity(email="forged@example.org"),
            "lieu": str(office.lieu),
            "debut": wanted,
        }
        for token in ("forged", "", None):
            body = dict(data) if token is None else {**data, "csrf": token}
            answer = client.post(f"{office.url}/motifs/{office.motif}/identite", data=body)
            assert answer.status_code == 403
            assert "Accès refusé" in answer.text
    with httpx.Client(timeout=30) as other:  # another browser's token
        form = other.get(
            f"{office.url}/motifs/{office.motif}/identite",
            params={"lieu": office.lieu, "debut": wanted},
        )
        stolen = journey.csrf(form)
    with httpx.Client(timeout=30) as client:
        client.get(office.url)
        answer = client.post(
            f"{office.url}/motifs/{office.motif}/identite", data={**data, "csrf": stolen}
        )
        assert answer.status_code == 403
    assert stack.smtp.mailbox.to("forged@example.org") == []


def test_another_browser_sees_nothing_of_a_request(stack: Stack) -> None:
    office = stack.office
    email = "private@example.org"
    with httpx.Client(timeout=30) as client:
        asked = journey.ask(
            client,
            office.url,
            office.motif,
            slot(office.day + timedelta(days=1), "09:00"),
            office.lieu,
            email=email,
            last_name="Secretname",
        )
        request_url = office.server.url + asked.headers["Location"]
        assert email in client.get(request_url).text
    with httpx.Client(timeout=30) as other:
        page = other.get(request_url)
        assert page.status_code == 404
        assert email not in page.text and "Secretname" not in page.text
        page = other.post(request_url, data={"code": "000000", "csrf": "x"})
        assert page.status_code == 403


def test_wrong_codes_run_out(stack: Stack) -> None:
    office = stack.office
    email = "wrongcode@example.org"
    with httpx.Client(timeout=30) as client:
        asked = journey.ask(
            client,
            office.url,
            office.motif,
            slot(office.day + timedelta(days=1), "09:30"),
            office.lieu,
            email=email,
        )
        request_url = office.server.url + asked.headers["Location"]
        code, _ = journey.code_and_link(_mail(stack, email))
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        statuses = [journey.type_code(client, request_url, wrong).status_code for _ in range(5)]
        assert statuses == [422] * 5
        assert journey.type_code(client, request_url, code).status_code == 410  # too late now


def test_a_slot_taken_before_the_code_offers_the_nearest(stack: Stack) -> None:
    office = stack.office
    email = "taken@example.org"
    day = office.day + timedelta(days=2)
    wanted = slot(day, "09:00")
    with httpx.Client(timeout=30) as client:
        asked = journey.ask(client, office.url, office.motif, wanted, office.lieu, email=email)
        request_url = office.server.url + asked.headers["Location"]
        code, _ = journey.code_and_link(_mail(stack, email))
        take_slot(office, wanted)  # both agents' 09:00 taken meanwhile
        answer = journey.type_code(client, request_url, code)
        assert answer.status_code == 303 and answer.headers["Location"].endswith("/autre-creneau")
        nearest = client.get(office.server.url + answer.headers["Location"])
        assert nearest.status_code == 409 and "plus disponible" in nearest.text
        assert f'value="{slot(day, "09:30")}"' in nearest.text
        chosen = client.post(
            office.server.url + answer.headers["Location"],
            data={"debut": slot(day, "09:30"), "csrf": journey.csrf(nearest)},
            follow_redirects=True,
        )
        assert "Votre rendez-vous est confirmé" in chosen.text


@pytest.mark.parametrize(
    "path",
    [
        "/motifs/{motif}/creneaux?semaine=2026-13-45",
        "/motifs/{motif}/creneaux?lieu=abc",
        "/motifs/{motif}/creneaux?lieu=99999999999999999999",
        "/motifs/{motif}/creneaux?semaine=1900-01-01&lieu={lieu}",
        "/motifs/{motif}/creneaux?semaine=9999-12-31&lieu={lieu}",
        "/motifs/{motif}/rdv?lieu={lieu}&debut=2026-02-30T09:00",
        "/motifs/{motif}/rdv?lieu={lieu}&debut=%00",
        "/motifs/{motif}/rdv?lieu={lieu}",
        "/motifs/{motif}/identite?lieu={lieu}&debut=9999-12-31T23:59",
        "/motifs/{motif}/identite?lieu={lieu}&debut=0001-01-01T00:00",
        "/motifs/{motif}/rdv?lieu={lieu}&debut=1970-01-01T00:00",
        "/demandes/../../etc",
        "/demandes/abc",
        "/demandes/abc/lien/def",
        "/demandes/abc/autre-creneau",
        "/invitation/nothing",
        "/rendez-vous",
        "/rendez-vous.ics",
    ],
)
def test_odd_parameters_never_answer_500(stack: Stack, path: str) -> None:
    office = stack.office
    url = office.url + path.format(motif=office.motif, lieu=office.lieu)
    answer = httpx.get(url, timeout=30)
    assert answer.status_code < 500, (url, answer.status_code)  # a clamped week is a 200
    assert "Traceback" not in answer.text


def test_no_usager_data_in_the_log(stack: Stack) -> None:
    log = Path(stack.server.log_path).read_text(errors="replace")
    for secret in ("journey@example.org", "Usagère", "06 12 34 56 78", "Secretname"):
        assert secret not in log


def test_an_invitation_books_without_identity_or_email_once(stack: Stack) -> None:
    office = stack.office
    day = office.day + timedelta(days=3)
    wanted = slot(day, "10:30")
    with office.admin() as admin:
        created = ok(
            admin.post(
                f"/organisations/{office.org}/invitations",
                json={
                    "first_name": "Dominique",
                    "last_name": "Invitée",
                    "email": "invitee@example.org",
                    "motif_id": office.motif,
                    "reference": "DS-1234",
                },
            ),
            201,
        )
    link = created["link"]
    assert link.startswith(f"{office.server.url}/prendre-rdv/{office.slug}/invitation/")
    with httpx.Client(timeout=30) as client:
        arrived = client.get(link)
        assert arrived.status_code == 303
        assert arrived.headers["Location"].endswith(f"/motifs/{office.motif}")
        form = client.get(
            f"{office.url}/motifs/{office.motif}/identite",
            params={"lieu": office.lieu, "debut": wanted},
        )
        assert "Dominique Invitée" in form.text and 'name="email"' not in form.text
        data = {"lieu": str(office.lieu), "debut": wanted, "csrf": journey.csrf(form)}
        booked = client.post(f"{office.url}/motifs/{office.motif}/invitation", data=data)
        assert booked.status_code == 303, booked.text[:300]
        assert (
            "Votre rendez-vous est confirmé"
            in client.get(office.server.url + booked.headers["Location"]).text
        )
        assert client.get(link).status_code == 409  # used
    assert journey.verifications(stack.smtp.mailbox, "invitee@example.org") == []  # no check
    with office.admin() as admin:
        shown = ok(admin.get(f"/organisations/{office.org}/invitations/{created['id']}"))
        assert shown["rdv_id"] and shown["reference"] == "DS-1234"
        agent = ok(admin.get(f"/organisations/{office.org}/agents"))
        login = next(a["login"] for a in agent if a["id"] == shown["rdv_agent_id"])
    ics = httpx.get(
        f"{office.server.url}/dav/{login}/rdv/{shown['rdv_id']}.ics", auth=("admin", ADMIN_PASSWORD)
    )
    assert f"X-CALSERVER-INVITATION:{created['id']}" in ics.text


def test_an_invitation_for_another_motif_cannot_book_this_one(stack: Stack) -> None:
    office = stack.office
    wanted = slot(office.day + timedelta(days=3), "11:00")
    with office.admin() as admin:
        created = ok(
            admin.post(
                f"/organisations/{office.org}/invitations",
                json={"first_name": "Lou", "last_name": "Autre", "motif_id": office.phone_motif},
            ),
            201,
        )
    with httpx.Client(timeout=30) as client:
        client.get(created["link"])
        form = client.get(
            f"{office.url}/motifs/{office.motif}/identite",
            params={"lieu": office.lieu, "debut": wanted},
        )
        data = {"lieu": str(office.lieu), "debut": wanted, "csrf": journey.csrf(form)}
        refused = client.post(f"{office.url}/motifs/{office.motif}/invitation", data=data)
        assert refused.status_code == 403
