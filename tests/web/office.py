"""An organisation set up for online booking through the API: two agents of
"Accueil" with weekday plages 09:00-12:00 from a working Monday a week ahead,
naming a public motif received at a lieu, a public phone motif and an
agent-only motif; a second lieu, then disabled, with a plage of its own."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import httpx

from tests.conftest import ADMIN_PASSWORD, Server, start_server
from tests.dates import working_monday
from tests.notifications.fakes import SmtpServer

API = "/api/v1"
WEEKDAYS = ["MO", "TU", "WE", "TH", "FR"]
BEFORE = "Munissez-vous de votre ancienne carte et d'un justificatif de domicile."
AFTER = "Présentez-vous à l'accueil 10 minutes avant l'heure."


@dataclass
class PublicOffice:
    server: Server
    org: int
    slug: str
    service: int
    agents: dict[str, int]
    lieu: int
    closed_lieu: int
    motif: int  # public, at a lieu, 30 minutes
    phone_motif: int  # public, by phone
    agents_motif: int  # agents only
    day: date  # a working Monday with plages

    @property
    def url(self) -> str:
        return f"{self.server.url}/prendre-rdv/{self.slug}"

    def admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.url + API, auth=("admin", ADMIN_PASSWORD), timeout=30
        )


def ok(answer: httpx.Response, status: int = 200) -> dict:
    assert answer.status_code == status, answer.text
    return answer.json()


def set_up(server: Server, *, weeks_ahead: int = 1, tag: str | None = None) -> PublicOffice:
    tag = tag or secrets.token_hex(3)
    day = working_monday(weeks_ahead)
    slug = f"mairie-{tag}"
    with httpx.Client(base_url=server.url + API, auth=("admin", ADMIN_PASSWORD), timeout=30) as a:
        org = ok(a.get("/me"))["organisations"][0]["id"]
        ok(
            a.patch(
                f"/organisations/{org}",
                json={
                    "slug": slug,
                    "name": "Mairie de Test",
                    "contact_phone": "01 23 45 67 89",
                    "contact_email": "accueil@mairie.example.fr",
                    "contact_address": "1 place de la Mairie, 75011 Paris",
                },
            )
        )
        service = ok(a.post(f"/organisations/{org}/services", json={"name": f"Accueil {tag}"}), 201)
        agents = {}
        for login in (f"guichet1-{tag}", f"guichet2-{tag}"):
            new = {"login": login, "services": [service["name"]], "password": f"{login}-password"}
            agents[login] = ok(a.post(f"/organisations/{org}/agents", json=new), 201)["id"]
        lieu = ok(
            a.post(
                f"/organisations/{org}/lieux",
                json={"name": f"Mairie annexe {tag}", "address": "2 rue Haute, 75011 Paris"},
            ),
            201,
        )["id"]
        closed = ok(
            a.post(
                f"/organisations/{org}/lieux",
                json={"name": f"Ancienne mairie {tag}", "address": "3 rue Basse, 75011 Paris"},
            ),
            201,
        )["id"]

        def motif(name: str, **more: object) -> int:
            body = {"name": f"{name} {tag}", "service_id": service["id"], **more}
            return ok(a.post(f"/organisations/{org}/motifs", json=body), 201)["id"]

        public = motif(
            "Carte d'identité",
            bookable_by="everyone",
            instructions_before=BEFORE,
            instructions_after=AFTER,
        )
        phone = motif("Entretien téléphonique", bookable_by="everyone", location_type="phone")
        agents_only = motif("Dossier complexe", bookable_by="agents")
        for number, agent in enumerate(agents.values()):
            plage = {
                "motif_ids": [public, phone, agents_only],
                "lieu_id": lieu,
                "first_day": day.isoformat(),
                "start_time": "09:00",
                "end_time": "12:00",
                "recurrence": {"frequency": "weekly", "weekdays": WEEKDAYS},
            }
            ok(a.post(f"/agents/{agent}/plages", json=plage), 201)
            if number == 0:
                afternoon = {**plage, "lieu_id": closed, "start_time": "14:00", "end_time": "16:00"}
                ok(a.post(f"/agents/{agent}/plages", json=afternoon), 201)
        ok(a.patch(f"/organisations/{org}/lieux/{closed}", json={"enabled": False}))
    return PublicOffice(
        server, org, slug, service["id"], agents, lieu, closed, public, phone, agents_only, day
    )


def slot(day: date, hour_minute: str) -> str:
    """A slot as the pages write it: local ``YYYY-MM-DDTHH:MM``."""
    return f"{day.isoformat()}T{hour_minute}"


def next_day(day: date, days: int) -> date:
    return day + timedelta(days=days)


def take_slot(office: PublicOffice, wanted: str) -> None:
    """Every agent's RDV at ``wanted`` (local time), booked by the admin
    through the API: the slot is then gone for usagers."""
    with office.admin() as admin:
        other = ok(
            admin.post(
                f"/organisations/{office.org}/usagers", json={"first_name": "A", "last_name": "B"}
            ),
            201,
        )
        for agent in office.agents.values():
            rdv = {
                "agent_id": agent,
                "motif_id": office.motif,
                "lieu_id": office.lieu,
                "starts_at": wanted,
                "usager_ids": [other["id"]],
            }
            ok(admin.post("/rdvs", json=rdv), 201)


@dataclass
class Stack:
    """A server with its SMTP server (aiosmtpd) and an office."""

    server: Server
    smtp: SmtpServer
    office: PublicOffice


@contextlib.contextmanager
def running(database_url: str, workdir: Path) -> Iterator[Stack]:
    """A server sending its emails to a local SMTP server (its notification
    worker sends the pages' verification emails, and the RDVs' notices),
    with an office set up."""
    smtp = SmtpServer().start()
    config = (
        f"[smtp]\nhost = 127.0.0.1\nport = {smtp.port}\nsender = rdv@mairie.example.fr\n"
        "[webhooks]\nworker = false\n"
    )
    try:
        server = start_server(database_url, workdir, extra_config=config)
        try:
            yield Stack(server, smtp, set_up(server))
        finally:
            server.stop()
    finally:
        smtp.stop()
