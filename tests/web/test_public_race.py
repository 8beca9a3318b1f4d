"""Two usagers confirming the same slot at the same moment, when one agent
is left for it: exactly one gets it, the other is offered the nearest slots;
the agent holds one RDV there (the one booking check, under its lock)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from tests.notifications.fakes import wait_for
from tests.web import journey
from tests.web.office import Stack, ok, running, slot

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running(module_database_url, tmp_path_factory.mktemp("race")) as found:
        yield found


def test_two_confirmations_of_the_last_free_agent(stack: Stack) -> None:
    office = stack.office
    day = office.day + timedelta(days=1)
    wanted = slot(day, "10:00")
    first, second = list(office.agents.values())
    with office.admin() as admin:  # one agent's 10:00 goes: one is left
        other = ok(
            admin.post(
                f"/organisations/{office.org}/usagers", json={"first_name": "A", "last_name": "B"}
            ),
            201,
        )
        rdv = {"agent_id": first, "motif_id": office.motif, "lieu_id": office.lieu,
               "starts_at": wanted, "usager_ids": [other["id"]]}  # fmt: skip
        ok(admin.post("/rdvs", json=rdv), 201)
    clients = [httpx.Client(timeout=60) for _ in range(2)]
    pending = []
    for n, client in enumerate(clients):
        email = f"race{n}@example.org"
        asked = journey.ask(client, office.url, office.motif, wanted, office.lieu, email=email)
        assert asked.status_code == 303, asked.text[:300]
        message = wait_for(lambda e=email: journey.verifications(stack.smtp.mailbox, e))[-1]  # type: ignore[index]
        code, _ = journey.code_and_link(message)
        url = office.server.url + asked.headers["Location"]
        pending.append((client, url, {"code": code, "csrf": journey.csrf(client.get(url))}))
    answers: list[httpx.Response] = []
    start = threading.Barrier(2)

    def confirm(client: httpx.Client, url: str, data: dict) -> None:
        start.wait()
        answers.append(client.post(url, data=data))

    threads = [threading.Thread(target=confirm, args=item) for item in pending]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for client in clients:
        client.close()
    places = sorted(a.headers["Location"].rsplit("/", 1)[1] for a in answers)
    assert places == ["autre-creneau", "rendez-vous"], [a.status_code for a in answers]
    with office.admin() as admin:
        window = {"from": day.isoformat(), "to": day.isoformat()}
        rdvs = ok(admin.get(f"/agents/{second}/rdvs", params=window))
        at_ten = [r for r in rdvs if r["starts_at"].startswith(wanted)]
    assert len(at_ten) == 1
