"""The CalDAV application called in-process, for tests that compare its answers."""

from __future__ import annotations

import base64
import io
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from plugins.caldav import build_caldav
from plugins.item_index import item_write, prepared_item
from storage import agents, calendars
from storage.database import Database
from tests.team import PASSWORDS, create_team

Call = Callable[..., tuple[str, bytes, list[tuple[str, str]]]]


@pytest.fixture
def dav(db: Database) -> Iterator[Call]:
    """Call the CalDAV application in-process as ``login`` (a team is created:
    alice, bob of her service, carol of another)."""
    with db.transaction(write=True) as conn:
        create_team(conn, agents.create_organisation(conn, "Org", "org"))
    app = build_caldav(db, max_content_length=1 << 20, realm="test").application

    def request(
        login: str, method: str, path: str, body: bytes = b"", **headers: str
    ) -> tuple[str, bytes, list[tuple[str, str]]]:
        credentials = base64.b64encode(f"{login}:{PASSWORDS[login]}".encode()).decode()
        environ = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "/dav",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.url_scheme": "http",
            "HTTP_AUTHORIZATION": f"Basic {credentials}",
            **{f"HTTP_{name.upper()}": value for name, value in headers.items()},
        }
        started: list[tuple[str, list[tuple[str, str]]]] = []
        chunks = app(environ, lambda status, headers, _exc=None: started.append((status, headers)))
        status, headers = started[0]
        return status, b"".join(chunks), sorted(headers)

    yield request


Answer = tuple[str, bytes, list[tuple[str, str]]]


def unsized(answer: Answer) -> Answer:
    """An answer without its Content-Length, which an answer sent in pieces
    does not have (checking first that a whole answer's is right)."""
    status, body, headers = answer
    length = dict(headers).get("Content-Length")
    assert length is None or length == str(len(body)), (length, len(body))
    return status, body, [(n, v) for n, v in headers if n != "Content-Length"]


def streamed(answer: Answer) -> bool:
    return "Content-Length" not in dict(answer[2])


def calls_of(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> list[int]:
    """Count the calls of ``owner.name`` (a function or method) from now on."""
    calls: list[int] = []
    original = getattr(owner, name)

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counting)
    return calls


# Who asks for alice's agendas, and how Radicale answers: only bob's reading of
# her rdv agenda is answered (calserver's listings answer no other).
REFUSED_OR_ANSWERED = [
    ("bob", "/alice/rdv/"),  # same service: shared agenda
    ("carol", "/alice/rdv/"),  # another service: nothing
    ("bob", "/alice/plages/"),  # colleague, not a shared agenda
    ("alice", "/alice/absent/"),  # no such collection
]


def store_in_alice_rdv(db: Database, texts: dict[str, str]) -> None:
    """Store items in alice's rdv agenda as a PUT stores them, but without the
    booking rules (plain events have no motif): what is tested is the reading."""
    with db.transaction(write=True) as conn:
        agenda = calendars.get_collection(conn, "alice/rdv")
        assert agenda is not None
        for href, text in texts.items():
            calendars.put_item(conn, agenda, item_write(prepared_item(text, agenda.path), href))
