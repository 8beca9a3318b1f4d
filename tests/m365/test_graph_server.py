"""The Graph stand-in keeps its promises (the other m365 tests rely on them):
HTTPS with its own CA, client-credential tokens (secret or certificate),
the authorization code flow with PKCE and refresh tokens, transactionId
idempotency, the extended-property filter, scripted faults, ``$batch``; and
calserver's token and Graph clients speak them."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import httpx
import pytest

from m365.graph import Answer, GraphClient, ssl_context
from m365.tokens import Credentials, DelegatedTokens, FlowError, Refused, TokenSource
from tests.m365.certs import self_signed
from tests.m365.graph import Fault, GraphServer

PROPERTY = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name calserverUid"


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphServer]:
    server = GraphServer(tmp_path_factory.mktemp("graph")).start()
    server.register_app("tenant-1", "client-1", "s3cret")
    yield server
    server.close()


def _client(graph: GraphServer) -> httpx.Client:
    token = httpx.post(
        f"{graph.url}/tenant-1/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "client-1",
            "client_secret": "s3cret",
        },
        verify=ssl.create_default_context(cafile=graph.ca_path),
    ).json()["access_token"]
    return httpx.Client(
        base_url=graph.url + "/v1.0",
        verify=ssl.create_default_context(cafile=graph.ca_path),
        headers={"Authorization": f"Bearer {token}"},
    )


def test_a_transaction_id_creates_once_and_the_filter_finds_our_events(graph: GraphServer) -> None:
    event = {
        "subject": "x",
        "transactionId": "t-1",
        "singleValueExtendedProperties": [{"id": PROPERTY, "value": "uid-1"}],
    }
    with _client(graph) as client:
        first = client.post("/users/a@example.org/events", json=event).json()
        again = client.post("/users/a@example.org/events", json=event).json()
        client.post("/users/a@example.org/events", json={"subject": "by hand"})
        assert first["id"] == again["id"]
        listed = client.get(
            "/users/a@example.org/events",
            params={"$filter": f"singleValueExtendedProperties/Any(ep: ep/id eq '{PROPERTY}')"},
        ).json()["value"]
        assert [e["id"] for e in listed] == [first["id"]]
        assert client.delete(f"/users/a@example.org/events/{first['id']}").status_code == 204
        assert (
            client.patch(f"/users/a@example.org/events/{first['id']}", json={}).status_code == 404
        )


def test_faults_tokens_and_refusals(graph: GraphServer) -> None:
    graph.fail(Fault(429, "1"), Fault(503))
    with _client(graph) as client:
        answer = client.get("/users/b@example.org/events")
        assert (answer.status_code, answer.headers["Retry-After"]) == (429, "1")
        assert client.get("/users/b@example.org/events").status_code == 503
        graph.fail(Fault(0, method="POST"))
        with pytest.raises(httpx.TransportError):
            client.post("/users/b@example.org/events", json={"subject": "dropped"})
        assert [e["subject"] for e in graph.events("b@example.org")] == ["dropped"]
        graph.expire_tokens()
        assert client.get("/users/b@example.org/events").status_code == 401
    refused = httpx.post(
        f"{graph.url}/tenant-1/oauth2/v2.0/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": "nope",
            "client_id": "client-1",
            "client_secret": "s3cret",
        },
        verify=ssl.create_default_context(cafile=graph.ca_path),
    )
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant")


def test_tokens_are_cached_renewed_after_a_401_and_refused_credentials_say_so(
    graph: GraphServer,
) -> None:
    graph.register_app("tenant-2", "client-2", "other")
    tokens = TokenSource(graph.url, str(graph.ca_path), 5)
    app = Credentials("tenant-2", "client-2", "other")
    first = tokens.token(app)
    assert tokens.token(app) == first  # cached until it expires
    tokens.forget_token(app)
    assert tokens.token(app) != first
    with pytest.raises(Refused, match="invalid_client"):
        tokens.token(Credentials("tenant-2", "client-2", "wrong"))


def _follow(graph: GraphServer, url: str) -> dict[str, str]:
    """Visit the authorize page; the query it sends the browser back with."""
    answer = httpx.get(url, verify=ssl.create_default_context(cafile=graph.ca_path))
    assert answer.status_code == 302, answer.text
    return dict(parse_qsl(urlsplit(answer.headers["Location"]).query))


def test_the_delegated_flow_checks_pkce_and_refresh_tokens_renew_until_revoked(
    graph: GraphServer,
) -> None:
    graph.register_app("organizations", "web-app", "web-secret")
    graph.sign_in_as("Agent@Contoso.example")
    delegated = DelegatedTokens(
        TokenSource(graph.url, str(graph.ca_path), 5),
        Credentials("organizations", "web-app", "web-secret"),
    )
    flow = delegated.start("https://rdv.example.org/outlook/callback")
    asked = dict(parse_qsl(urlsplit(flow["auth_uri"]).query))
    # msal asks the reserved scopes itself (offline_access: a refresh token).
    assert {"Calendars.ReadWrite", "offline_access"} <= set(asked["scope"].split())
    assert asked["code_challenge_method"] == "S256" and asked["state"] == flow["state"]
    back = _follow(graph, flow["auth_uri"])
    with pytest.raises(FlowError):  # an answer for another flow (state)
        delegated.finish(flow, {**back, "state": "forged"})
    stolen = dict(flow, code_verifier="another-verifier-" + "x" * 30)
    with pytest.raises(Refused, match="invalid_grant"):  # the code needs its verifier
        delegated.finish(stolen, back)
    flow = delegated.start("https://rdv.example.org/outlook/callback")
    granted = delegated.finish(flow, _follow(graph, flow["auth_uri"]))
    assert granted.account == "agent@contoso.example" and granted.refresh_token
    token, renewed = delegated.refresh((1, 1), granted.refresh_token)
    assert renewed is not None and renewed.refresh_token != granted.refresh_token
    assert delegated.refresh((1, 1), granted.refresh_token) == (token, None)  # cached
    graph.revoke_grants("agent@contoso.example")
    delegated.forget(1)
    with pytest.raises(Refused, match="invalid_grant"):
        delegated.refresh((1, 1), renewed.refresh_token)


def test_a_certificate_signs_the_client_assertion_and_another_is_refused(
    graph: GraphServer,
) -> None:
    certificate, key = self_signed("calserver-app")
    other_certificate, other_key = self_signed("someone-else")
    graph.register_certificate("tenant-3", "client-3", certificate)
    tokens = TokenSource(graph.url, str(graph.ca_path), 5)
    assert tokens.token(Credentials("tenant-3", "client-3", key, certificate))
    form = graph.token_requests[-1]
    assert "client_secret" not in form and form["client_assertion_type"].endswith("jwt-bearer")
    with pytest.raises(Refused, match="invalid_client"):
        tokens.token(Credentials("tenant-3", "client-3", other_key, other_certificate))
    # Its own key with the registered certificate's name: the signature fails.
    with pytest.raises(Refused, match="invalid_client"):
        tokens.token(Credentials("tenant-3", "client-3", other_key, certificate))


def test_batches_answer_each_call_and_keep_four_in_flight_per_mailbox(
    graph: GraphServer,
) -> None:
    token = _client(graph).headers["Authorization"].removeprefix("Bearer ")
    mailboxes = [f"batch{n}@example.org" for n in range(6)]
    graph.fail(Fault(429, "3", method="POST"))

    async def run() -> list[Answer]:
        connector = aiohttp.TCPConnector(ssl=ssl_context(str(graph.ca_path)))
        async with aiohttp.ClientSession(connector=connector) as session:
            client = GraphClient(session, graph.url + "/v1.0", 5)
            calls = [
                client.call(token, box, "POST", client.events_url(box), {"subject": f"{box}-{n}"})
                for box in mailboxes
                for n in range(5)
            ]
            answers = await asyncio.gather(*calls)
            assert client.batches >= 2
            return answers

    before = graph.batches
    answers = asyncio.run(run())
    assert graph.batches - before >= 2  # 30 calls, at most 20 in a batch
    throttled = [a for a in answers if a.status == 429]
    assert len(throttled) == 1 and throttled[0].retry_after_ms == 3000
    assert sum(a.status == 201 for a in answers) == 29
    assert all(a.body and a.body["id"] for a in answers if a.status == 201)
    for box in mailboxes:
        assert graph.most_in_flight[box] <= 4
        assert len(graph.events(box)) == (5 if box != throttled_box(graph, mailboxes) else 4)


def throttled_box(graph: GraphServer, mailboxes: list[str]) -> str:
    (box,) = [b for b in mailboxes if len(graph.events(b)) == 4]
    return box
