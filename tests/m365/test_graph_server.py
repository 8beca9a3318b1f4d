"""The Graph stand-in keeps its promises (the other m365 tests rely on them):
HTTPS with its own CA, client-credential tokens, transactionId idempotency,
the extended-property filter, scripted faults."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import httpx
import pytest

from m365.tokens import Credentials, Refused, TokenSource
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
