"""The public booking page in a real Chromium: the whole journey by mouse at
1280 px and by keyboard only at 360 px, the emailed link followed, the RDV
then read by a CalDAV client, an invitation, a slot taken between identity
and confirmation; axe-core finds no serious or critical violation on any page,
and each page is kept as a screenshot (tests/artifacts/)."""

from __future__ import annotations

from datetime import timedelta

import caldav
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ARTIFACTS, SERIOUS
from tests.notifications.fakes import wait_for
from tests.web import journey
from tests.web.office import Stack, ok, slot, take_slot

pytestmark = pytest.mark.slow
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 740}
AXE = Axe()


class Visit:
    """A browser tab that checks and photographs every page it reaches."""

    def __init__(self, browser: Browser, name: str, viewport: dict) -> None:
        self.context = browser.new_context(viewport=viewport, locale="fr-FR")
        self.page: Page = self.context.new_page()
        self.name, self.width, self.step = name, viewport["width"], 0
        self.violations: list[str] = []

    def check(self, label: str) -> None:
        """axe-core on the page as it is, then a full-page screenshot."""
        self.step += 1
        results = AXE.run(self.page)
        for violation in results.response["violations"]:
            if violation["impact"] in SERIOUS:
                self.violations.append(f"{label}: {violation['id']}: {violation['help']}")
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{self.width}px-{self.step:02d}-{label}.png"
        self.page.screenshot(path=str(path), full_page=True)

    def close(self) -> None:
        self.context.close()
        assert not self.violations, "\n".join(self.violations)


def _mail(stack: Stack, address: str):  # type: ignore[no-untyped-def]
    return wait_for(lambda: (m := journey.verifications(stack.smtp.mailbox, address)) and m)[-1]


def _caldav_sees(stack: Stack, agent_login: str, last_name: str) -> bool:
    client = caldav.DAVClient(
        url=stack.server.dav, username=agent_login, password=f"{agent_login}-password"
    )
    calendar = client.calendar(url=f"{stack.server.dav}{agent_login}/rdv/")
    return any(last_name in event.data for event in calendar.events())


def _booked_agent(stack: Stack, email: str) -> str | None:
    office = stack.office
    with office.admin() as admin:
        usager = next(
            u for u in ok(admin.get(f"/organisations/{office.org}/usagers")) if u["email"] == email
        )
        for login, agent in office.agents.items():
            if any(usager["id"] in r["usager_ids"] for r in ok(admin.get(f"/agents/{agent}/rdvs"))):
                return login
    return None


def test_the_journey_by_mouse_on_a_desktop(stack: Stack, browser: Browser) -> None:
    office = stack.office
    email = "souris@example.org"
    visit = Visit(browser, "mouse", DESKTOP)
    page = visit.page
    page.goto(office.url)
    visit.check("services")
    page.get_by_role("link", name=f"Accueil {office.slug.removeprefix('mairie-')}").click()
    visit.check("motifs")
    page.get_by_role("link", name="Carte d'identité").click()
    visit.check("lieux")
    expect(page.get_by_text("Prochaine disponibilité")).to_be_visible()
    page.get_by_role("link", name="Mairie annexe").click()
    page.goto(page.url.split("&semaine=")[0] + f"&semaine={office.day.isoformat()}")
    visit.check("creneaux")
    page.locator(f'a.slot[href$="debut={slot(office.day, "09:00")}"]').click()
    visit.check("instructions")
    expect(page.get_by_text("justificatif de domicile")).to_be_visible()
    page.get_by_role("link", name="Continuer").click()
    visit.check("identite")
    page.get_by_role("button", name="Recevoir mon code de confirmation").click()
    visit.check("identite-erreurs")  # nothing typed: every error announced
    expect(page.get_by_role("alert")).to_contain_text("erreur")
    page.get_by_label("Prénom").fill("Sacha")
    page.get_by_label("Nom", exact=True).fill("Souris")
    page.get_by_label("Adresse électronique").fill(email)
    page.get_by_role("textbox", name="Téléphone portable").fill("06 11 22 33 44")
    page.get_by_role("button", name="Recevoir mon code de confirmation").click()
    visit.check("code")
    expect(page.get_by_text(email)).to_be_visible()
    _, link = journey.code_and_link(_mail(stack, email))
    page.goto(link)
    visit.check("lien")
    page.get_by_role("button", name="Confirmer mon rendez-vous").click()
    expect(page.get_by_role("heading", name="Votre rendez-vous est confirmé")).to_be_visible()
    visit.check("confirmation")
    with page.expect_download() as download:
        page.get_by_role("link", name="Ajouter à mon agenda (.ics)").click()
    assert b"BEGIN:VEVENT" in download.value.path().read_bytes()
    page.goto(f"{office.url}/nulle-part")
    expect(page.get_by_role("heading", name="Page introuvable")).to_be_visible()
    visit.check("erreur-404")
    visit.close()
    login = _booked_agent(stack, email)
    assert login is not None and _caldav_sees(stack, login, "Souris")


def _tab_to(page: Page, text: str, limit: int = 120) -> None:
    """Press Tab until the focused element says ``text``, as a keyboard user would."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "() => { const e = document.activeElement; return (e.getAttribute('aria-label')"
            " || e.innerText || e.value || e.id || '').trim() }"
        )
        if text in focused:
            return
    raise AssertionError(f"{text!r} is not reachable with Tab on {page.url}")


def test_the_journey_by_keyboard_only_on_a_phone(stack: Stack, browser: Browser) -> None:
    office = stack.office
    email = "clavier@example.org"
    day = office.day + timedelta(days=1)
    visit = Visit(browser, "keyboard", PHONE)
    page = visit.page
    page.goto(office.url)
    visit.check("services")
    _tab_to(page, "Accueil")
    page.keyboard.press("Enter")
    page.wait_for_url("**/services/**")
    visit.check("motifs")
    _tab_to(page, "Carte d'identité")
    page.keyboard.press("Enter")
    page.wait_for_url("**/motifs/**")
    visit.check("lieux")
    _tab_to(page, "Mairie annexe")
    page.keyboard.press("Enter")
    page.wait_for_url("**/creneaux**")
    while day.isoformat() not in page.url and "9h00" not in page.content():
        _tab_to(page, "Semaine suivante")
        page.keyboard.press("Enter")
        page.wait_for_load_state()
    visit.check("creneaux")
    _tab_to(page, "à 9h00")
    page.keyboard.press("Enter")
    page.wait_for_url("**/rdv?**")
    visit.check("instructions")
    _tab_to(page, "Continuer")
    page.keyboard.press("Enter")
    page.wait_for_url("**/identite?**")
    visit.check("identite")
    _tab_to(page, "first_name")
    page.keyboard.type("Claude")
    page.keyboard.press("Tab")
    page.keyboard.type("Clavier")
    page.keyboard.press("Tab")
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    page.keyboard.type("0611223355")
    _tab_to(page, "Recevoir mon code")
    page.keyboard.press("Enter")
    page.wait_for_url("**/demandes/**")
    visit.check("code")
    code, _ = journey.code_and_link(_mail(stack, email))
    _tab_to(page, "code")
    page.keyboard.type(code)
    page.keyboard.press("Enter")
    page.wait_for_url("**/rendez-vous")
    visit.check("confirmation")
    expect(page.get_by_role("heading", name="Votre rendez-vous est confirmé")).to_be_visible()
    visit.close()
    login = _booked_agent(stack, email)
    assert login is not None and _caldav_sees(stack, login, "Clavier")


def test_an_invitation_link_books_in_the_browser(stack: Stack, browser: Browser) -> None:
    office = stack.office
    day = office.day + timedelta(days=2)
    with office.admin() as admin:
        created = ok(
            admin.post(
                f"/organisations/{office.org}/invitations",
                json={"first_name": "Ines", "last_name": "Invitée", "email": "ines@example.org",
                      "motif_id": office.motif, "reference": "DS-77"},
            ),
            201,
        )  # fmt: skip
    visit = Visit(browser, "invitation", DESKTOP)
    page = visit.page
    page.goto(created["link"])
    visit.check("lieux")
    page.get_by_role("link", name="Mairie annexe").click()
    page.goto(page.url.split("&semaine=")[0] + f"&semaine={day.isoformat()}")
    page.locator(f'a.slot[href$="debut={slot(day, "10:00")}"]').click()
    page.get_by_role("link", name="Continuer").click()
    visit.check("invitee")
    expect(page.get_by_text("Ines Invitée")).to_be_visible()
    page.get_by_role("button", name="Confirmer le rendez-vous").click()
    expect(page.get_by_role("heading", name="Votre rendez-vous est confirmé")).to_be_visible()
    visit.check("confirmation")
    visit.close()
    with office.admin() as admin:
        assert ok(admin.get(f"/organisations/{office.org}/invitations/{created['id']}"))["rdv_id"]


def test_a_slot_taken_between_identity_and_code(stack: Stack, browser: Browser) -> None:
    office = stack.office
    email = "pris@example.org"
    day = office.day + timedelta(days=3)
    wanted = slot(day, "11:00")
    visit = Visit(browser, "taken", PHONE)
    page = visit.page
    page.goto(f"{office.url}/motifs/{office.motif}/identite?lieu={office.lieu}&debut={wanted}")
    page.get_by_label("Prénom").fill("Pat")
    page.get_by_label("Nom", exact=True).fill("Pris")
    page.get_by_label("Adresse électronique").fill(email)
    page.get_by_role("button", name="Recevoir mon code de confirmation").click()
    page.wait_for_url("**/demandes/**")
    code, _ = journey.code_and_link(_mail(stack, email))
    take_slot(office, wanted)  # every agent's 11:00 goes meanwhile
    page.get_by_label("Code de confirmation").fill(code)
    page.get_by_role("button", name="Confirmer mon rendez-vous").click()
    page.wait_for_url("**/autre-creneau")
    expect(page.get_by_role("alert")).to_contain_text("n'est plus disponible")
    visit.check("autre-creneau")
    page.get_by_role("button").filter(has_text="11h30").first.click()
    expect(page.get_by_role("heading", name="Votre rendez-vous est confirmé")).to_be_visible()
    visit.check("confirmation")
    visit.close()
    assert _booked_agent(stack, email) is not None
