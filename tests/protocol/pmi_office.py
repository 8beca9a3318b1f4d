"""An organisation set up through the API for outbox and webhook tests: alice
and bob of PMI with weekday plages 09:00-12:00 from the Monday two weeks
ahead, a lieu, a 30-minute motif and a usager."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import httpx

from tests.conftest import ADMIN_PASSWORD, Server
from tests.dates import monday
from tests.webhooks.receiver import Receiver

API = "/api/v1"
WEEKDAYS = ["MO", "TU", "WE", "TH", "FR"]


@dataclass
class Office:
    server: Server
    org: int
    alice: int
    bob: int
    lieu: int
    motif: int
    usager: int
    day: date

    def client(self, login: str = "admin") -> httpx.Client:
        password = ADMIN_PASSWORD if login == "admin" else f"{login}-password"
        return httpx.Client(base_url=self.server.url + API, auth=(login, password), timeout=30)

    def at(self, hour_minute: str) -> str:
        """A local time on the office's Monday, as the API takes it."""
        return f"{self.day.isoformat()}T{hour_minute}"


def ok(answer: httpx.Response, status: int = 200) -> dict:
    assert answer.status_code == status, answer.text
    return answer.json()


def set_up(server: Server) -> Office:
    day = monday(2)
    with httpx.Client(base_url=server.url + API, auth=("admin", ADMIN_PASSWORD)) as admin:
        org = ok(admin.get("/me"))["organisations"][0]["id"]
        ids = {}
        for login in ("alice", "bob"):
            new = {"login": login, "services": ["PMI"], "password": f"{login}-password"}
            ids[login] = ok(admin.post(f"/organisations/{org}/agents", json=new), 201)["id"]
        pmi = next(s for s in ok(admin.get(f"/organisations/{org}/services")) if s["name"] == "PMI")
        lieu = ok(
            admin.post(
                f"/organisations/{org}/lieux",
                json={"name": "Mairie annexe", "address": "1 place de la Mairie, 75011 Paris"},
            ),
            201,
        )["id"]
        motif = ok(
            admin.post(
                f"/organisations/{org}/motifs",
                json={"name": "Consultation", "service_id": pmi["id"]},
            ),
            201,
        )["id"]
        usager = ok(
            admin.post(
                f"/organisations/{org}/usagers",
                json={"first_name": "Camille", "last_name": "Durand", "email": "c@example.org"},
            ),
            201,
        )["id"]
        for login in ("alice", "bob"):
            plage = {
                "motif_ids": [motif],
                "lieu_id": lieu,
                "first_day": day.isoformat(),
                "start_time": "09:00",
                "end_time": "12:00",
                "recurrence": {"frequency": "weekly", "weekdays": WEEKDAYS},
            }
            ok(admin.post(f"/agents/{ids[login]}/plages", json=plage), 201)
    return Office(server, org, ids["alice"], ids["bob"], lieu, motif, usager, day)


def book(office: Office, hour_minute: str, login: str = "alice") -> httpx.Response:
    with office.client(login) as client:
        return client.post(
            "/rdvs",
            json={
                "agent_id": office.alice,
                "motif_id": office.motif,
                "lieu_id": office.lieu,
                "starts_at": office.at(hour_minute),
                "usager_ids": [office.usager],
            },
        )


def book_on(office: Office, day: date, hour_minute: str, usager: int | None = None) -> dict:
    """Alice books an RDV on ``day`` at ``hour_minute`` (201 checked)."""
    with office.client("alice") as alice:
        return ok(
            alice.post(
                "/rdvs",
                json={
                    "agent_id": office.alice,
                    "motif_id": office.motif,
                    "lieu_id": office.lieu,
                    "starts_at": f"{day.isoformat()}T{hour_minute}",
                    "usager_ids": [usager or office.usager],
                },
            ),
            201,
        )


def subscribe(
    office: Office, receiver: Receiver, path: str, models: list[str], initial_sync: bool = True
) -> dict:
    """An endpoint of the office's organisation at the receiver's ``path``;
    the receiver learns its secret."""
    with office.client() as admin:
        created = ok(
            admin.post(
                f"/organisations/{office.org}/webhook_endpoints",
                json={
                    "target_url": receiver.url(path),
                    "subscriptions": models,
                    "initial_sync": initial_sync,
                },
            ),
            201,
        )
    receiver.secrets.append(created["secret"])
    return created
