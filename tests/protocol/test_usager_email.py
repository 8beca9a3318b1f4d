"""A usager's email is unique within its organisation (domain.md): a create or
change to an email another usager of the organisation has is a 409 naming that
usager's id, and writes nothing; emails are compared trimmed and
case-insensitively; another organisation may have the same email; CalDAV
cannot create usagers at all.  One server per database for the module; each
test uses emails of its own."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from storage import agents
from storage.database import Database
from tests.conftest import ADMIN_PASSWORD, Server
from tests.dates import at, working_monday
from tests.ics import event
from tests.protocol.office import ALICE, Office, ok

API = "/api/v1"


@pytest.fixture(scope="module")
def admin(module_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=module_server.url + API, auth=("admin", ADMIN_PASSWORD)) as client:
        yield client


@pytest.fixture(scope="module")
def org(admin: httpx.Client) -> int:
    return ok(admin.get("/me"))["organisations"][0]["id"]


def _usagers(admin: httpx.Client, org: int) -> list[dict]:
    return ok(admin.get(f"/organisations/{org}/usagers"))


def _create(admin: httpx.Client, org: int, **fields: object) -> httpx.Response:
    return admin.post(f"/organisations/{org}/usagers", json={"first_name": "A", **fields})


def _conflict(answer: httpx.Response, existing: int) -> None:
    assert answer.status_code == 409, answer.text
    error = answer.json()["error"]
    assert error["code"] == "exists"
    assert error["existing_id"] == existing
    assert f"id {existing}" in error["message"]


def test_a_second_usager_with_the_same_email_is_409_pointing_at_the_first(
    admin: httpx.Client, org: int
) -> None:
    first = ok(_create(admin, org, last_name="Martin", email="  Anne.Martin@Example.FR "), 201)
    assert first["email"] == "anne.martin@example.fr"
    before = _usagers(admin, org)
    again = _create(admin, org, last_name="Durand", email="anne.martin@example.fr")
    _conflict(again, first["id"])
    shouted = _create(admin, org, last_name="Durand", email="ANNE.MARTIN@example.fr\t")
    _conflict(shouted, first["id"])
    assert _usagers(admin, org) == before


def test_changing_a_usager_to_a_taken_email_is_409_and_changes_nothing(
    admin: httpx.Client, org: int
) -> None:
    taken = ok(_create(admin, org, last_name="Petit", email="paul.petit@example.fr"), 201)
    other = ok(_create(admin, org, last_name="Leroy", email="lea.leroy@example.fr"), 201)
    url = f"/organisations/{org}/usagers/{other['id']}"
    change = {"last_name": "Changed", "email": "Paul.Petit@example.fr"}
    _conflict(admin.patch(url, json=change), taken["id"])
    assert ok(admin.get(url)) == other
    # Its own email, however written, is no conflict; nor are usagers without one.
    assert ok(admin.patch(url, json={"email": " LEA.leroy@example.fr"}))["email"] == (
        "lea.leroy@example.fr"
    )
    for name in ("Sans", "Mail"):
        ok(_create(admin, org, last_name=name), 201)
    assert ok(admin.patch(url, json={"email": None}))["email"] is None


def test_another_organisation_may_have_the_same_email(
    module_server: Server, admin: httpx.Client, org: int
) -> None:
    ok(_create(admin, org, last_name="Roux", email="jean.roux@example.fr"), 201)
    db = Database(module_server.database_url)
    try:
        with db.transaction(write=True) as conn:
            other = agents.create_organisation(conn, "Autre", "autre-usagers", "Europe/Paris")
            agents.create_agent(
                conn, "autre-admin", organisation=other, role="admin", password="autre-pass-1"
            )
    finally:
        db.dispose()
    with httpx.Client(
        base_url=module_server.url + API, auth=("autre-admin", "autre-pass-1")
    ) as autre:
        created = ok(_create(autre, other, last_name="Roux", email="Jean.Roux@example.fr"), 201)
        assert created["organisation_id"] == other


def test_caldav_cannot_create_usagers(module_server: Server, admin: httpx.Client) -> None:
    """An RDV written by a calendar client names usagers by id only: an
    attendee with a new email books the RDV and creates no usager."""
    office = Office(module_server, login="emily")
    try:
        before = _usagers(admin, office.org)
        extra = (
            f"X-CALSERVER-MOTIF:{office.motif}\r\nX-CALSERVER-LIEU:{office.lieu}\r\n"
            "ATTENDEE;CN=Nouvelle Personne:mailto:nouvelle.personne@example.fr"
        )
        body = event("emily-attendee", at(working_monday(2), 9), extra=extra).encode()
        url = module_server.dav + "emily/rdv/emily-attendee.ics"
        put = httpx.put(url, content=body, auth=(office.login, ALICE[1]))
        assert put.status_code == 201, put.text
        assert _usagers(admin, office.org) == before
    finally:
        office.close()


def test_two_agents_racing_for_one_email_get_one_usager(admin: httpx.Client, org: int) -> None:
    """Both creates reach the unique index at once: one is written, the other
    is the 409 naming it (on PostgreSQL the loser waits for the winner's
    commit, then finds it in its own transaction)."""
    for round_ in range(3):
        email = f"course.{round_}@example.fr"
        with ThreadPoolExecutor(2) as pool:
            racing = [pool.submit(_create, admin, org, last_name=n, email=email) for n in "AB"]
            answers = [r.result() for r in racing]
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [201, 409], [a.text for a in answers]
        created = next(a for a in answers if a.status_code == 201).json()
        _conflict(next(a for a in answers if a.status_code == 409), created["id"])
        assert [u["id"] for u in _usagers(admin, org) if u["email"] == email] == [created["id"]]
