"""Bad input to the JSON API: text the database cannot hold (NUL, control
characters) is a 422 naming the field, in a URL a 400; nothing is stored.

The tests share one server per database (``module_server``): each names its
records uniquely and looks for those alone."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, Server

API = "/api/v1"


@pytest.fixture
def admin(module_server: Server) -> Iterator[httpx.Client]:
    client = httpx.Client(
        base_url=module_server.url + API, auth=("admin", ADMIN_PASSWORD), timeout=30
    )
    yield client
    client.close()


def _org(admin: httpx.Client) -> int:
    return admin.get("/me").json()["organisations"][0]["id"]


@pytest.mark.parametrize("text", ["Jeanne\x00Dupont", "bell\x07", "esc\x1b[2J", "del\x7f"])
def test_control_characters_in_json_text_are_422_and_nothing_is_stored(
    admin: httpx.Client, text: str
) -> None:
    org = _org(admin)
    mark = f"x-{secrets.token_hex(4)}"
    usager = admin.post(
        f"/organisations/{org}/usagers", json={"first_name": text, "last_name": mark}
    )
    assert usager.status_code == 422
    assert usager.json()["error"]["code"] == "invalid-text"
    assert "first_name" in usager.json()["error"]["message"]
    stored = admin.get(f"/organisations/{org}/usagers").json()
    assert [u for u in stored if u["last_name"] == mark] == []
    new = {"login": mark, "display_name": text, "password": "zed-password-1"}
    agent = admin.post(f"/organisations/{org}/agents", json=new)
    assert agent.status_code == 422
    logins = [a["login"] for a in admin.get(f"/organisations/{org}/agents").json()]
    assert mark not in logins
    me = admin.get("/me").json()
    patched = admin.patch(f"/organisations/{org}/agents/{me['id']}", json={"display_name": text})
    assert patched.status_code == 422
    assert admin.get("/me").json()["display_name"] == me["display_name"]


def test_tabs_and_newlines_are_ordinary_text(admin: httpx.Client) -> None:
    org = _org(admin)
    made = admin.post(
        f"/organisations/{org}/usagers", json={"first_name": "Anne\tMarie", "last_name": "X\r\nY"}
    )
    assert made.status_code == 201, made.text


def test_control_characters_in_the_url_are_400(admin: httpx.Client) -> None:
    org = _org(admin)
    query = admin.get("/creneaux", params={"motif": "1", "from": "2030-01-01\x00", "to": "x"})
    assert query.status_code == 400
    assert query.json()["error"]["code"] == "invalid-url"
    me = admin.get("/me").json()
    for url in (f"/agents/{me['id']}/rdvs/uid%00x", f"/organisations/{org}/usagers?q=a%00b"):
        answer = admin.get(url)
        assert answer.status_code == 400, (url, answer.text)
        assert answer.json()["error"]["code"] == "invalid-url"
    assert admin.get(f"/organisations/{org}").status_code == 200


def test_a_malformed_email_is_named_in_a_sentence_not_a_regular_expression(
    admin: httpx.Client,
) -> None:
    org = _org(admin)
    mark = f"x-{secrets.token_hex(4)}"
    made = admin.post(
        f"/organisations/{org}/usagers",
        json={"first_name": "Anne", "last_name": mark, "email": "anne, bob@example.org"},
    )
    assert made.status_code == 422
    message = made.json()["error"]["message"]
    assert "`$.email`" in message and "expected form" in message
    assert "regex" not in message and "[A-Za-z0-9" not in message
    stored = admin.get(f"/organisations/{org}/usagers").json()
    assert [u for u in stored if u["last_name"] == mark] == []
