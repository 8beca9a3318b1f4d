"""Authentication under attack, over real sockets: malformed credentials are
401 and never logged, an unknown login answers like a wrong password, repeated
failures get 429 with Retry-After on CalDAV and the API alike (one throttle),
and neither the owner elsewhere nor known clients at the attacker's address
are locked out.  Other loopback addresses (127.0.x.y) stand for other hosts.

The tests share one server per database (``module_server``), whose throttle
counts per address and per login: each test attacks from addresses and
targets logins of its own, so no count of one test reaches another."""

from __future__ import annotations

import base64
import secrets
import statistics
import time

import httpx
import pytest

from plugins.auth_throttle import Limits
from tests.conftest import ADMIN_PASSWORD, Server

API = "/api/v1"
BOB_PASSWORD = "bob-password-1"
MARKER = "zz-marker-9f3a"


def _client(server: Server, address: str = "127.0.0.1", **kwargs: object) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=server.url, transport=transport, timeout=30, **kwargs)


def _propfind(client: httpx.Client, auth: tuple[str, str] | None = None) -> httpx.Response:
    chosen = auth if auth is not None else httpx.USE_CLIENT_DEFAULT
    return client.request("PROPFIND", "/dav/admin/", auth=chosen, headers={"Depth": "0"})


def _add_bob(server: Server) -> str:
    """A new agent of a login never seen before (so known to no cache), by
    the API; returns that login."""
    login = f"bob-{secrets.token_hex(4)}"
    with _client(server, auth=("admin", ADMIN_PASSWORD)) as admin:
        org = admin.get(API + "/me").json()["organisations"][0]["id"]
        bob = {"login": login, "services": ["PMI"], "password": BOB_PASSWORD}
        assert admin.post(f"{API}/organisations/{org}/agents", json=bob).status_code == 201
    return login


def _basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


MALFORMED = [
    "Basic !!!" + MARKER,
    _basic(MARKER.encode()),  # no colon
    _basic(b"\xff\xfe" + MARKER.encode() + b":x"),  # not UTF-8
    "Basic",
    "Basic" + MARKER,
    "Basic " + "QUFB" * 2000,  # over-long
]


@pytest.mark.parametrize("header", MALFORMED)
def test_malformed_authorization_is_401_on_both_and_never_logged(
    module_server: Server, header: str
) -> None:
    with _client(module_server, address=f"127.0.1.{MALFORMED.index(header) + 1}") as client:
        dav = client.request(
            "PROPFIND", "/dav/admin/", headers={"Authorization": header, "Depth": "0"}
        )
        assert dav.status_code == 401
        assert dav.headers["WWW-Authenticate"].startswith("Basic realm=")
        api = client.get(API + "/me", headers={"Authorization": header})
        assert api.status_code == 401
        assert api.headers["WWW-Authenticate"].startswith("Basic realm=")
        assert api.json()["error"]["code"] == "unauthenticated"
        assert client.get("/healthz").status_code == 200
    log = module_server.log()
    assert MARKER not in log and header.split(" ", 1)[-1][:20] not in log
    assert "Traceback" not in log


def test_unknown_login_answers_like_a_wrong_password(module_server: Server) -> None:
    def answer(login: str) -> list[tuple[int, bytes, dict[str, str]]]:
        with _client(module_server, address="127.0.0.5") as client:
            found = [
                _propfind(client, (login, "not-the-password")),
                client.get(API + "/me", auth=(login, "not-the-password")),
            ]
        kept = ("content-type", "www-authenticate", "retry-after")
        return [
            (r.status_code, r.content, {k: v for k, v in r.headers.items() if k in kept})
            for r in found
        ]

    wrong_password, unknown_login = answer("admin"), answer("nobody-here")
    assert wrong_password == unknown_login
    assert [status for status, _, _ in wrong_password] == [401, 401]


def test_unknown_login_takes_as_long_as_a_wrong_password(module_server: Server) -> None:
    """An unknown login is verified against a dummy hash: answering it faster
    would tell an attacker which logins exist.  Pairs of attempts back to back
    from one address (under its free failures), so that both of a pair meet
    the same load; the median of the pairs' ratios is compared."""
    bob = _add_bob(module_server)
    ratios: list[float] = []
    with _client(module_server, address="127.0.2.1") as client:
        for n in range(9):
            took = []
            for login in (bob, f"ghost-{secrets.token_hex(4)}"):
                began = time.perf_counter()
                assert _propfind(client, (login, f"try-{n}")).status_code == 401
                took.append(time.perf_counter() - began)
            ratios.append(took[1] / took[0])
    ratio = statistics.median(ratios)
    print(f"\nunknown login / wrong password, median of 9 pairs: {ratio:.2f}")
    assert 0.5 < ratio < 2.0


def test_repeated_failures_get_429_on_both_paths_and_lock_nobody_out(
    module_server: Server,
) -> None:
    bob = _add_bob(module_server)
    free = Limits().pair_free
    with _client(module_server, auth=("admin", ADMIN_PASSWORD)) as admin_elsewhere:
        assert _propfind(admin_elsewhere).status_code == 207  # admin is now known
    with _client(module_server, address="127.0.0.2") as attacker:
        for n in range(free):  # half over CalDAV, half over the API: one throttle
            if n % 2:
                status = _propfind(attacker, (bob, f"guess-{n}")).status_code
            else:
                status = attacker.get(API + "/me", auth=(bob, f"guess-{n}")).status_code
            assert status == 401, n
        dav = _propfind(attacker, (bob, "guess-again"))
        api = attacker.get(API + "/me", auth=(bob, "guess-again"))
        for refused in (dav, api):
            assert refused.status_code == 429
            assert int(refused.headers["Retry-After"]) >= 1
        assert api.json()["error"]["code"] == "too-many-failures"
        # The right password from the attacker's address waits too (bob is
        # not known yet), but a known client there goes on.
        assert _propfind(attacker, (bob, BOB_PASSWORD)).status_code == 429
        assert _propfind(attacker, ("admin", ADMIN_PASSWORD)).status_code == 207
    with _client(module_server, address="127.0.0.3") as owner:  # bob, from elsewhere
        assert owner.get(API + "/me", auth=(bob, BOB_PASSWORD)).status_code == 200
    with _client(module_server, address="127.0.0.2") as attacker:  # now bob is known
        assert _propfind(attacker, (bob, BOB_PASSWORD)).status_code == 403  # admin's home
        assert attacker.get(API + "/me", auth=(bob, BOB_PASSWORD)).status_code == 200
    assert "guess" not in module_server.log()


def test_an_address_spraying_logins_is_held_back_but_known_clients_go_on(
    module_server: Server,
) -> None:
    with _client(module_server, address="127.0.0.4") as sprayer:
        assert _propfind(sprayer, ("admin", ADMIN_PASSWORD)).status_code == 207
        for n in range(Limits().address_free):
            assert _propfind(sprayer, (f"ghost{n}", "password")).status_code == 401, n
        refused = sprayer.get(API + "/me", auth=("someone-else", "password"))
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) >= 1
        assert _propfind(sprayer, ("admin", ADMIN_PASSWORD)).status_code == 207
    with _client(module_server, address="127.0.0.6") as elsewhere:
        assert _propfind(elsewhere, ("someone-else", "password")).status_code == 401
