"""An agent's own Outlook connection, end to end over a real server and the
Graph stand-in (HTTPS): the "Connecter Outlook" page, Microsoft's authorize
page, the callback; the refresh token stored sealed; pushes through ``/me``
ahead of the organisation's connection; refresh tokens renewed; a revoked
grant breaking the connection and stopping its retries; disconnecting
deleting the tokens and handing the agent back to the organisation's
connection.  Also: forged or foreign callbacks and forms refused, an
organisation connected with a certificate (and a wrong one refused), and a
``$batch`` with a 429 inside."""

from __future__ import annotations

import re
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from m365.event import uid_of
from m365.secrets import SecretBox, new_key
from storage.database import Database
from storage.schema import m365_delegations
from tests.conftest import run_cli, start_server
from tests.dates import working_days
from tests.m365.certs import self_signed
from tests.m365.graph import Fault, GraphServer
from tests.protocol.pmi_office import Office, book_on, ok, set_up

TENANT, CLIENT, SECRET = "tenant-d", "client-d", "secret-d"
WEB_CLIENT, WEB_SECRET = "outlook-web", "outlook-web-secret"
ALICE = "alice@pmi.example.org"  # alice's email: the organisation's way in
OUTLOOK = "alice.outlook@contoso.example"  # the account alice signs in with


@dataclass
class Setup:
    office: Office
    graph: GraphServer
    box: SecretBox
    db: Database
    config: Path

    @property
    def delegation_url(self) -> str:
        return f"/organisations/{self.office.org}/agents/{self.office.alice}/m365/delegation"

    def browser(self, login: str = "alice") -> httpx.Client:
        return httpx.Client(
            base_url=self.office.server.url, auth=(login, f"{login}-password"), timeout=30
        )

    def delegation(self) -> httpx.Response:
        with self.office.client("alice") as alice:
            return alice.get(self.delegation_url)

    def stored(self) -> dict | None:
        with self.db.transaction(write=False) as conn:
            row = conn.execute(
                select(m365_delegations).where(m365_delegations.c.agent_id == self.office.alice)
            ).first()
        return dict(row._mapping) if row else None

    def ours(self, mailbox: str, day: date) -> list[dict]:
        return [
            e
            for e in self.graph.events(mailbox)
            if uid_of(e) and e["start"]["dateTime"].startswith(day.isoformat())
        ]


def _csrf(page: httpx.Response) -> str:
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert found, page.text
    return found[1]


def _at_microsoft(setup: Setup, url: str) -> str:
    """The browser at the authorize page (signed in already): where it is sent back."""
    verify = ssl.create_default_context(cafile=setup.graph.ca_path)
    answer = httpx.get(url, verify=verify)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def _connect(setup: Setup, browser: httpx.Client, account: str) -> httpx.Response:
    """Click "Connecter Outlook", sign in as ``account``: the callback's answer."""
    started = browser.post("/outlook/connect", data={"csrf": _csrf(browser.get("/outlook/"))})
    assert started.status_code == 303, started.text
    assert started.headers["Location"].startswith(setup.graph.url)
    setup.graph.sign_in_as(account)
    return browser.get(_at_microsoft(setup, started.headers["Location"]))


@pytest.fixture(scope="module")
def setup(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    folder = tmp_path_factory.mktemp("m365d")
    graph = GraphServer(folder).start()
    graph.register_app(TENANT, CLIENT, SECRET)
    graph.register_app("organizations", WEB_CLIENT, WEB_SECRET)
    key = new_key()
    m365 = (
        f"[m365]\nkey = {key}\nauthority_url = {graph.url}\n"
        f"graph_url = {graph.url}/v1.0\nca_bundle = {graph.ca_path}\n"
        "timeout_seconds = 2\nretry_first_ms = 200\n"
        f"delegated_client_id = {WEB_CLIENT}\ndelegated_client_secret = {WEB_SECRET}\n"
    )
    server = start_server(module_database_url, folder, extra_config=m365)
    (folder / "cli.ini").write_text(m365)
    office = set_up(server)
    with office.client() as admin:
        ok(admin.patch(f"/organisations/{office.org}/agents/{office.alice}", json={"email": ALICE}))
        connection = {"tenant_id": TENANT, "client_id": CLIENT, "client_secret": SECRET}
        ok(admin.put(f"/organisations/{office.org}/m365/connection", json=connection))
    db = Database(module_database_url)
    yield Setup(office, graph, SecretBox(key), db, folder / "cli.ini")
    db.dispose()
    server.stop()
    graph.close()


def _day(setup: Setup, n: int) -> date:
    return working_days(setup.office.day, 15)[n]


def _book(setup: Setup, day: date, hhmm: str) -> dict:
    return book_on(setup.office, day, hhmm)


def _refreshes(setup: Setup) -> int:
    return sum(f.get("grant_type") == "refresh_token" for f in setup.graph.token_requests)


def test_the_delegated_connection_from_page_to_disconnect(setup: Setup) -> None:
    graph, first_day = setup.graph, _day(setup, 0)
    with setup.browser() as browser:
        page = browser.get("/outlook/")
        assert "Connecter Outlook" in page.text
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        done = _connect(setup, browser, OUTLOOK)
        assert (done.status_code, done.headers["Location"]) == (303, "/outlook/")
        assert OUTLOOK in browser.get("/outlook/").text
    shown = ok(setup.delegation())
    assert (shown["account"], shown["state"]) == (OUTLOOK, "ok")
    assert "token" not in str(shown).replace("refresh_token", "")
    code_grant = graph.token_requests[-1]
    assert code_grant["grant_type"] == "authorization_code" and code_grant["code_verifier"]

    # Stored sealed: no refresh token the platform gave is in the database.
    stored = setup.stored()
    assert stored is not None and stored["refresh_token"] not in graph.refresh_tokens
    assert setup.box.open(stored["refresh_token"]) in graph.refresh_tokens

    # Pushes go to the account alice signed in with, through /me, ahead of
    # the organisation's connection (which would use /users/<her email>).
    refreshes = _refreshes(setup)
    _book(setup, first_day, "09:00")
    (event,) = graph.wait(lambda: setup.ours(OUTLOOK, first_day))
    assert not setup.ours(ALICE, first_day)
    posts = [r for r in graph.requests("POST") if r.mailbox == OUTLOOK]
    assert posts and {r.path for r in posts} == {"/v1.0/me/events"}
    assert _refreshes(setup) == refreshes + 1  # a new access token from the refresh token
    renewed = setup.stored()
    assert renewed is not None and renewed["refresh_token"] != stored["refresh_token"]
    assert setup.box.open(renewed["refresh_token"]) != setup.box.open(stored["refresh_token"])

    # An access token refused (401) is bought again with the refresh token.
    graph.expire_tokens()
    _book(setup, first_day, "10:00")
    graph.wait(lambda: len(setup.ours(OUTLOOK, first_day)) == 2)
    assert _refreshes(setup) == refreshes + 2

    # Reconciliation lists the account's events through /me and repairs them.
    graph.delete_by_hand(OUTLOOK, event["id"])
    done = run_cli(setup.office.server.database_url, "m365-reconcile", config=setup.config)
    assert done.returncode == 0, done.stderr
    graph.wait(lambda: len(setup.ours(OUTLOOK, first_day)) == 2)
    assert any(r.path == "/v1.0/me/events" for r in graph.requests("GET"))

    # The grant revoked: invalid_grant breaks the connection, deletes the
    # token and stops the retries; nothing goes to the organisation's way.
    second_day = _day(setup, 1)
    graph.revoke_grants(OUTLOOK)
    _book(setup, second_day, "09:00")
    broken = graph.wait(lambda: (d := setup.delegation().json())["state"] == "broken" and d)
    assert "invalid_grant" in broken["broken_reason"]
    assert setup.stored()["refresh_token"] is None  # type: ignore[index]
    calls, refreshes = len(graph.requests()), _refreshes(setup)
    time.sleep(1.0)  # retry_first_ms is 200: retries would show
    assert (len(graph.requests()), _refreshes(setup)) == (calls, refreshes)
    assert not setup.ours(OUTLOOK, second_day) and not setup.ours(ALICE, second_day)
    with setup.browser() as browser:
        assert "interrompue" in browser.get("/outlook/").text
        # Connected again: what waited goes.
        assert _connect(setup, browser, OUTLOOK).status_code == 303
    graph.wait(lambda: setup.ours(OUTLOOK, second_day))
    assert ok(setup.delegation())["state"] == "ok"

    # Disconnected: the tokens are deleted; the organisation's connection
    # takes the agent's next pushes again (to the mailbox of its email).
    with setup.browser() as browser:
        token = _csrf(browser.get("/outlook/"))
        assert browser.post("/outlook/disconnect", data={"csrf": token}).status_code == 303
    assert setup.delegation().status_code == 404 and setup.stored() is None
    # Its events moved: deleted from the account, made in the email's mailbox.
    graph.wait(lambda: len(setup.ours(ALICE, first_day)) == 2)
    graph.wait(lambda: not setup.ours(OUTLOOK, first_day) and setup.ours(ALICE, second_day))
    third_day = _day(setup, 2)
    _book(setup, third_day, "09:00")
    graph.wait(lambda: setup.ours(ALICE, third_day))
    assert graph.requests("POST")[-1].path == f"/v1.0/users/{ALICE}/events"


def test_forged_or_foreign_forms_and_callbacks_are_refused(setup: Setup) -> None:
    with setup.browser() as alice, setup.browser("bob") as bob:
        assert alice.post("/outlook/connect", data={}).status_code == 403
        bobs = _csrf(bob.get("/outlook/"))
        assert alice.post("/outlook/connect", data={"csrf": bobs}).status_code == 403
        assert alice.post("/outlook/disconnect", data={"csrf": bobs}).status_code == 403
        # A callback without the flow this browser started: refused.
        assert alice.get("/outlook/callback?code=x&state=y").status_code == 400
        started = alice.post("/outlook/connect", data={"csrf": _csrf(alice.get("/outlook/"))})
        setup.graph.sign_in_as("mallory@contoso.example")
        back = _at_microsoft(setup, started.headers["Location"])
        forged = re.sub(r"state=[^&]+", "state=forged", back)
        assert alice.get(forged).status_code == 400
        # Alice's flow finished by bob (with alice's cookie): refused.
        bob.cookies = alice.cookies
        assert bob.get(back).status_code == 403
    with httpx.Client(base_url=setup.office.server.url) as anonymous:
        refused = anonymous.get("/outlook/")
        assert refused.status_code == 401 and "Basic" in refused.headers["WWW-Authenticate"]
    assert setup.delegation().status_code == 404
    with setup.office.client("bob") as bob_api:
        assert bob_api.get(setup.delegation_url).status_code == 403


def test_a_certificate_connects_the_organisation_and_a_wrong_one_breaks_it(
    setup: Setup,
) -> None:
    office, graph = setup.office, setup.graph
    url = f"/organisations/{office.org}/m365/connection"
    certificate, key = self_signed("calserver-tenant-d")
    other_certificate, other_key = self_signed("not-registered")
    graph.register_certificate(TENANT, CLIENT, certificate)
    with office.client() as admin:
        mixed = {"tenant_id": TENANT, "client_id": CLIENT}
        bad = admin.put(url, json={**mixed, "certificate": certificate, "private_key": other_key})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid-certificate"
        both = {**mixed, "client_secret": SECRET, "certificate": certificate, "private_key": key}
        assert admin.put(url, json=both).status_code == 422
        shown = ok(admin.put(url, json={**mixed, "certificate": certificate, "private_key": key}))
        assert shown["credential"] == "certificate" and len(shown["certificate_thumbprint"]) == 64
        assert "PRIVATE KEY" not in str(shown) and "PRIVATE KEY" not in str(ok(admin.get(url)))
        day = _day(setup, 3)
        _book(setup, day, "09:00")
        graph.wait(lambda: setup.ours(ALICE, day))
        assert graph.token_requests[-1].get("client_assertion")
        # A certificate the app does not have: refused, the connection broken.
        wrong = {**mixed, "certificate": other_certificate, "private_key": other_key}
        ok(admin.put(url, json=wrong))
        graph.expire_tokens()
        _book(setup, day, "10:00")
        broken = graph.wait(lambda: (c := ok(admin.get(url)))["state"] == "broken" and c)
        assert "invalid_client" in broken["broken_reason"]
        ok(admin.put(url, json={**mixed, "client_secret": SECRET}))
    graph.wait(lambda: len(setup.ours(ALICE, day)) == 2)


def test_waiting_rdvs_leave_in_a_batch_and_a_429_inside_is_retried(setup: Setup) -> None:
    office, graph = setup.office, setup.graph
    url = f"/organisations/{office.org}/m365/connection"
    day = _day(setup, 4)
    with office.client() as admin:
        assert admin.delete(url).status_code == 204  # the pushes wait, then leave together
        for hhmm in ("09:00", "09:30", "10:00", "10:30", "11:00"):
            _book(setup, day, hhmm)
        graph.fail(Fault(429, "1", method="POST", batched=True))
        batches = graph.batches
        ok(admin.put(url, json={"tenant_id": TENANT, "client_id": CLIENT, "client_secret": SECRET}))
    found = graph.wait(lambda: len(f := setup.ours(ALICE, day)) == 5 and f)
    assert len({uid_of(e) for e in found}) == 5
    assert graph.batches > batches and graph.most_in_flight[ALICE] <= 4
    in_batches = [r for r in graph.requests("POST") if f'"{day}T'.encode() in r.body]
    (throttled,) = [r for r in in_batches if r.status == 429]
    assert throttled.in_batch  # answered inside a $batch, with its own Retry-After
    assert len(in_batches) == 6  # five creates and the one retried after its Retry-After
