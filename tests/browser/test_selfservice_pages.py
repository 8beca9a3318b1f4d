"""The self-service link and the back office's RDV page in real Chromium
(Debian's, through Playwright): the link read from the confirmation email (a
real SMTP server), the letters typed with the keyboard alone, a move through
the week of créneaux, a cancellation then seen by a CalDAV client, the
4-hour limit, and the back office's login and RDV page.  Every page is
checked with axe-core (no serious or critical violation) and kept as
screenshots 360 and 1280 pixels wide under tests/artifacts/selfservice/.  The
server here runs its notification worker: the link comes by email."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import caldav
import httpx
import icalendar
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ARTIFACTS as SHARED_ARTIFACTS
from tests.browser.conftest import SERIOUS
from tests.conftest import _migrated_database
from tests.notifications.fakes import SmtpServer, both_running, wait_for
from tests.protocol.notified_office import Stack, notified_office
from tests.protocol.pmi_office import Office, ok

pytestmark = pytest.mark.slow
PARIS = ZoneInfo("Europe/Paris")
ARTIFACTS = SHARED_ARTIFACTS / "selfservice"
LINK = re.compile(r"/r/\d+/[A-Z0-9]{8}")
WIDTHS = (360, 1280)


@pytest.fixture(scope="module")
def notified(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The notified office on SQLite (the databases are the protocol tests'
    business): its worker sends the link by email."""
    database = _migrated_database("sqlite", request, tmp_path_factory.mktemp("db"))
    with database as url, contextmanager(both_running)() as fakes:
        motif = {"bookable_by": "everyone", "usager_can_move": True}
        with notified_office(url, tmp_path_factory.mktemp("browser"), fakes, motif) as found:
            yield found


@pytest.fixture(scope="module")
def office(notified: Stack) -> Office:
    return notified.office


@pytest.fixture(scope="module")
def smtp(notified: Stack) -> SmtpServer:
    return notified.smtp


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR")
    found = context.new_page()
    yield found
    context.close()


def _checked(page: Page, name: str) -> None:
    """axe-core finds nothing serious or critical; screenshots at both widths."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    results = Axe().run(page)
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]])
        for v in results.response["violations"]
        if v["impact"] in SERIOUS
    ]
    assert bad == [], f"{name}: {bad}"
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def _usager(office: Office, tag: str) -> dict:
    with office.client() as admin:
        return ok(
            admin.post(
                f"/organisations/{office.org}/usagers",
                json={
                    "first_name": "Yann",
                    "last_name": "Le Hénaff",
                    "email": f"{tag}@usagers.example.org",
                },
            ),
            201,
        )


def _book(office: Office, agent: int, starts_at: str, usager: int, login: str = "bob") -> dict:
    with office.client(login) as client:
        return ok(
            client.post(
                "/rdvs",
                json={
                    "agent_id": agent,
                    "motif_id": office.motif,
                    "lieu_id": office.lieu,
                    "starts_at": starts_at,
                    "usager_ids": [usager],
                },
            ),
            201,
        )


def _link(smtp: SmtpServer, address: str) -> str:
    mails = wait_for(lambda: smtp.mailbox.to(address))
    text = next(p for p in mails[0].walk() if p.get_content_type() == "text/plain")  # type: ignore[index]
    found = LINK.search(text.get_content())
    assert found is not None
    return found.group()


def _type_letters_by_keyboard(page: Page, letters: str) -> None:
    """Skip link, then the field, typed and sent with the keyboard only."""
    page.keyboard.press("Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(page.locator("#lettres")).to_be_focused()
    page.keyboard.type(letters)
    page.keyboard.press("Enter")
    page.wait_for_load_state()


def test_move_then_cancel_through_the_link(page: Page, office: Office, smtp: SmtpServer) -> None:
    usager = _usager(office, "move-cancel")
    rdv = _book(office, office.alice, office.at("09:00"), usager["id"])
    link = _link(smtp, usager["email"])
    page.goto(office.server.url + link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Accéder à votre rendez-vous")
    _checked(page, "01-lettres")
    _type_letters_by_keyboard(page, "xyz")
    expect(page.get_by_role("alert")).to_contain_text("ne correspondent pas")
    expect(page.locator("#lettres")).to_have_attribute("aria-invalid", "true")
    _checked(page, "02-lettres-erreur")
    page.get_by_label("Les trois premières lettres").fill("LÉH")
    page.get_by_role("button", name="Voir mon rendez-vous").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Votre rendez-vous")
    expect(page.locator(".summary")).to_contain_text("9h00")
    expect(page.locator("main")).to_contain_text("Apportez le carnet de santé.")
    _checked(page, "03-rdv")

    page.get_by_role("link", name="Déplacer le rendez-vous").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Choisissez un nouveau créneau")
    following = page.get_by_role("link", name=re.compile("Prochaine disponibilité"))
    if following.count():
        following.click()
    _checked(page, "04-deplacer")
    slot = page.locator("a.slot").first
    slot.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirmer le nouveau créneau")
    _checked(page, "05-deplacer-confirmer")
    page.get_by_role("button", name="Confirmer le déplacement").click()
    expect(page.get_by_role("status")).to_contain_text("Votre rendez-vous est déplacé")
    with office.client("alice") as alice:
        moved = ok(alice.get(f"/agents/{office.alice}/rdvs/{rdv['id']}"))
    assert moved["starts_at"] != rdv["starts_at"] and moved["sequence"] > rdv["sequence"]

    page.get_by_role("link", name="Annuler le rendez-vous").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Annuler le rendez-vous")
    _checked(page, "06-annuler")
    page.get_by_role("button", name="Confirmer l'annulation").click()
    expect(page.get_by_role("status")).to_contain_text("Votre rendez-vous est annulé")
    expect(page.get_by_role("link", name="Annuler le rendez-vous")).to_have_count(0)
    _checked(page, "07-annule")
    with caldav.DAVClient(office.server.dav, username="alice", password="alice-password") as dav:
        calendar = dav.calendar(url=f"{office.server.dav}alice/rdv/")
        text = calendar.event_by_uid(rdv["id"]).data
    assert "X-CALSERVER-STATUS:excused" in text and "STATUS:CANCELLED" in text


def test_the_four_hour_limit_in_the_browser(page: Page, office: Office, smtp: SmtpServer) -> None:
    now = datetime.now(UTC)
    for hours in (1, 3):
        start = (now + timedelta(hours=hours)).astimezone(PARIS)
        start = start.replace(second=0, microsecond=0) + timedelta(minutes=5 - start.minute % 5)
        if (start + timedelta(minutes=30)).date() == start.date():
            break
    with office.client() as admin:
        plage = {
            "motif_ids": [office.motif],
            "lieu_id": office.lieu,
            "first_day": start.date().isoformat(),
            "start_time": "00:00",
            "end_time": "23:59",
        }
        ok(admin.post(f"/agents/{office.bob}/plages", json=plage), 201)
    usager = _usager(office, "soon")
    _book(office, office.bob, start.strftime("%Y-%m-%dT%H:%M"), usager["id"])
    page.goto(office.server.url + _link(smtp, usager["email"]))
    page.get_by_label("Les trois premières lettres").fill("leh")
    page.get_by_role("button", name="Voir mon rendez-vous").click()
    expect(page.locator("main")).to_contain_text("moins de 4 heures")
    expect(page.get_by_role("link", name="Annuler le rendez-vous")).to_have_count(0)
    expect(page.get_by_role("link", name="Déplacer le rendez-vous")).to_have_count(0)
    _checked(page, "08-moins-de-4-heures")


def test_the_back_office_rdv_page(page: Page, office: Office) -> None:
    usager = _usager(office, "backoffice")
    _book(office, office.alice, office.at("11:00"), usager["id"])
    with office.client("alice") as alice:
        feed = alice.post(f"/agents/{office.alice}/feed/rotate").json()["https"]
    calendar = icalendar.Calendar.from_ical(httpx.get(feed).content)
    url = next(
        str(e["URL"])
        for e in calendar.walk("VEVENT")
        if e.decoded("DTSTART").astimezone(PARIS).strftime("%H:%M") == "11:00"
    )
    page.goto(office.server.url + httpx.URL(url).path)
    expect(page.get_by_role("heading", level=1)).to_have_text("Connexion agent")
    _checked(page, "09-connexion-agent")
    page.get_by_label("Identifiant").fill("alice")
    page.get_by_label("Mot de passe").fill("alice-password")
    page.get_by_role("button", name="Se connecter").click()
    expect(page.locator("main")).to_contain_text("Le Hénaff")
    _checked(page, "10-rdv-agent")
    page.get_by_label("Présent (vu)").check()
    page.get_by_role("button", name="Enregistrer le statut").click()
    expect(page.get_by_role("status")).to_contain_text("Statut enregistré")
    expect(page.locator("#statut-actuel")).to_have_text("Présent (vu)")
