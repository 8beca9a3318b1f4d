"""Double booking is impossible: twenty bookings of one slot racing through
the API and CalDAV on two server processes of one database, ten rounds."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, start_server
from tests.dates import at, working_monday
from tests.ics import event

pytestmark = pytest.mark.slow

ATTEMPTS = 20
ROUNDS = 10
ALICE = ("alice", "alice-password")
# Two ordinary weeks ahead: the ten rounds book ten weekdays, none a holiday.
FIRST_DAY = working_monday(weeks=2)


def _setup(url: str) -> tuple[int, int, int]:
    """alice with a weekday plage 09:00-12:00 for a 30-minute motif at a lieu."""
    with httpx.Client(base_url=url + "/api/v1", auth=("admin", ADMIN_PASSWORD)) as admin:
        org = admin.get("/me").json()["organisations"][0]["id"]
        agent = {"login": "alice", "services": ["PMI"], "password": ALICE[1]}
        alice = admin.post(f"/organisations/{org}/agents", json=agent).json()["id"]
        service = admin.get(f"/organisations/{org}/services").json()[0]["id"]
        lieu = admin.post(
            f"/organisations/{org}/lieux",
            json={"name": "Accueil", "address": "1 rue A, 75001 Paris"},
        ).json()["id"]
        motif = admin.post(
            f"/organisations/{org}/motifs", json={"name": "RDV", "service_id": service}
        ).json()["id"]
        plage = {
            "motif_ids": [motif],
            "lieu_id": lieu,
            "first_day": FIRST_DAY.isoformat(),
            "start_time": "09:00",
            "end_time": "12:00",
            "recurrence": {"frequency": "weekly", "weekdays": ["MO", "TU", "WE", "TH", "FR"]},
        }
        assert admin.post(f"/agents/{alice}/plages", json=plage).status_code == 201
    return alice, motif, lieu


def _weekdays(first: datetime, count: int) -> list[datetime]:
    days, day = [], first
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def test_exactly_one_of_twenty_racing_bookings_wins(database_url: str, tmp_path: Path) -> None:
    servers = [start_server(database_url, tmp_path / name) for name in ("a", "b")]
    try:
        alice, motif, lieu = _setup(servers[0].url)
        for round_, slot in enumerate(_weekdays(at(FIRST_DAY, 9, 30), ROUNDS)):
            barrier = threading.Barrier(ATTEMPTS)

            def attempt(
                n: int,
                slot: datetime = slot,
                barrier: threading.Barrier = barrier,
                round_: int = round_,
            ) -> tuple[str, int, str]:
                server = servers[n % 2]
                with httpx.Client(auth=ALICE, timeout=60) as client:
                    if n % 4 < 2:
                        payload = {
                            "agent_id": alice,
                            "motif_id": motif,
                            "lieu_id": lieu,
                            "starts_at": slot.isoformat(),
                        }
                        barrier.wait()
                        answer = client.post(server.url + "/api/v1/rdvs", json=payload)
                        return "api", answer.status_code, answer.text
                    uid = f"race-{round_}-{n}"
                    body = event(
                        uid, slot, extra=f"X-CALSERVER-MOTIF:{motif}\r\nX-CALSERVER-LIEU:{lieu}"
                    )
                    barrier.wait()
                    answer = client.put(
                        server.dav + f"alice/rdv/{uid}.ics",
                        content=body.encode(),
                        headers={"Content-Type": "text/calendar", "If-None-Match": "*"},
                    )
                    return "caldav", answer.status_code, answer.text

            with ThreadPoolExecutor(ATTEMPTS) as pool:
                results = list(pool.map(attempt, range(ATTEMPTS)))
            wins = [r for r in results if r[1] == 201]
            assert len(wins) == 1, (round_, results)
            for path, status, text in results:
                if status == 201:
                    continue
                if path == "api":
                    assert status == 409 and "slot-unavailable" in text, text
                else:
                    assert status == 403 and "slot-unavailable" in text, text
            with httpx.Client(auth=ALICE) as client:
                day = slot.date().isoformat()
                booked = client.get(
                    servers[1].url + f"/api/v1/agents/{alice}/rdvs", params={"from": day, "to": day}
                ).json()
            assert len(booked) == 1, booked
    finally:
        for server in servers:
            server.stop()
