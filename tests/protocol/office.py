"""An organisation set up through the JSON API over real HTTP: alice with a
lieu, a motif and a weekday plage for the coming year, her feed's URL, and a
way to book the next free slot.  Shared by the feed and privacy tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx

from tests.conftest import ADMIN_PASSWORD, Server
from tests.dates import today

API = "/api/v1"
ALICE = ("alice", "alice-password")


def ok(answer: httpx.Response, status: int = 200) -> dict:
    assert answer.status_code == status, answer.text
    return answer.json()


class Office:
    """An organisation with alice, a lieu, a motif and a weekday plage for the
    coming year, set up through the API."""

    def __init__(self, server: Server, login: str = ALICE[0]) -> None:
        """``login`` names the agent: another one per test lets tests share a
        server (the lieu and motifs are then the test's own too)."""
        self.server = server
        self.login = login
        self.auth = (login, ALICE[1])
        self.admin = httpx.Client(base_url=server.url + API, auth=("admin", ADMIN_PASSWORD))
        self.alice = httpx.Client(base_url=server.url + API, auth=self.auth)
        self.org = ok(self.admin.get("/me"))["organisations"][0]["id"]
        agent = {
            "login": login,
            "services": ["PMI"],
            "password": ALICE[1],
            "display_name": "Alice",
        }
        self.agent = ok(self.admin.post(f"/organisations/{self.org}/agents", json=agent), 201)["id"]
        service = ok(self.admin.get(f"/organisations/{self.org}/services"))[0]["id"]
        lieu = {"name": "Mairie annexe", "address": "1 place de la Mairie, 75011 Paris"}
        self.lieu = ok(self.admin.post(f"/organisations/{self.org}/lieux", json=lieu), 201)["id"]
        # Motif names are unique in an organisation: another agent's office names its own.
        self.motif_name = "Consultation PMI" + ("" if login == ALICE[0] else f" {login}")
        motif = {"name": self.motif_name, "service_id": service, "duration_minutes": 30}
        self.motif = ok(self.admin.post(f"/organisations/{self.org}/motifs", json=motif), 201)["id"]
        # The same 30 minutes away from the office: the plage offers them too.
        self.remote = {
            kind: ok(
                self.admin.post(
                    f"/organisations/{self.org}/motifs",
                    json={**motif, "name": f"Entretien {kind} {login}", "location_type": kind},
                ),
                201,
            )["id"]
            for kind in ("home", "phone", "visio")
        }
        self.first_day = today() + timedelta(days=1)
        plage = {
            "motif_ids": [self.motif, *self.remote.values()],
            "lieu_id": self.lieu,
            "first_day": self.first_day.isoformat(),
            "start_time": "08:00",
            "end_time": "18:00",
            "recurrence": {"frequency": "weekly", "weekdays": ["MO", "TU", "WE", "TH", "FR"]},
        }
        ok(self.alice.post(f"/agents/{self.agent}/plages", json=plage), 201)
        self.slots = self._free_slots()
        links = ok(self.alice.get(f"/agents/{self.agent}/feed"))
        self.feed_url = links["https"]

    def _free_slots(self) -> Iterator[str]:
        """The plage's free slots, four weeks at a time as they are used (a
        search costs the server more than most tests)."""
        start = self.first_day
        while start < self.first_day + timedelta(days=365):
            answer = ok(
                self.alice.get(
                    "/creneaux",
                    params={"motif": self.motif, "from": start.isoformat(),
                            "to": (start + timedelta(days=27)).isoformat()},
                )
            )  # fmt: skip
            yield from (c["starts_at"] for c in answer["creneaux"])
            start += timedelta(days=28)

    def book(self, usager: dict | None = None, location_type: str = "public_office") -> dict:
        """An RDV for ``usager`` (created first) at the next free slot; at the
        lieu, or at home, by phone or by visio."""
        usager_ids = []
        if usager is not None:
            created = self.alice.post(f"/organisations/{self.org}/usagers", json=usager)
            usager_ids = [ok(created, 201)["id"]]
        return self.book_with(*usager_ids, location_type=location_type)

    def book_with(self, *usager_ids: int, location_type: str = "public_office") -> dict:
        """An RDV of alice's motif of that location type, on the next free slot."""
        rdv = {
            "agent_id": self.agent,
            "motif_id": self.remote.get(location_type, self.motif),
            "starts_at": next(self.slots),
            "usager_ids": list(usager_ids),
        }
        if location_type == "public_office":
            rdv["lieu_id"] = self.lieu
        return ok(self.alice.post("/rdvs", json=rdv), 201)

    def close(self) -> None:
        self.admin.close()
        self.alice.close()
