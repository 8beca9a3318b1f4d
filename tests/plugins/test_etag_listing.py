"""PROPFIND Depth 1 answered from item heads says, byte for byte, what Radicale's
generic PROPFIND says, and only to whom Radicale says it."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from urllib.parse import quote

import pytest

from plugins import etag_listing
from plugins.application import Application
from plugins.item_index import item_write, prepared_item
from storage import calendars
from storage.database import Database
from tests.ics import event
from tests.plugins.conftest import Call, calls_of, streamed, unsized

# Hrefs a client may choose: escapes, non-ASCII, XML's special characters.
HREFS = ["plain.ics", "a b.ics", "x@y.ics", "Zoé – été.ics", "100%&<>.ics", "~q_-.ics"]
PROPERTIES = ("getetag", "getcontenttype", "resourcetype", "getlastmodified")
TODO = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VTODO\r\nUID:todo\r\n"
    "DTSTAMP:20260101T000000Z\r\nSUMMARY:Rappeler\r\nEND:VTODO\r\nEND:VCALENDAR\r\n"
)
# Who asks for which listing: only bob's of alice's rdv is answered from heads.
ASKED = [
    ("bob", "/alice/rdv/"),  # same service: shared agenda
    ("carol", "/alice/rdv/"),  # another service: nothing
    ("bob", "/alice/plages/"),  # colleague, not a shared agenda
    ("alice", "/alice/absent/"),  # no such collection
    ("alice", "/alice/"),  # the principal: not a calendar
    ("alice", "/alice/rdv/plain.ics"),  # an item
]


def _propfind_body(properties: tuple[str, ...]) -> bytes:
    props = "".join(f"<D:{p}/>" for p in properties)
    return f'<D:propfind xmlns:D="DAV:"><D:prop>{props}</D:prop></D:propfind>'.encode()


@pytest.fixture
def call(db: Database, dav: Call) -> Iterator[Call]:
    """The in-process CalDAV application with a few items in alice's rdv agenda."""
    # Listing data, stored as a PUT stores it but without the booking rules
    # (these plain events have no motif): what is tested is the listing.
    texts = {href: event(f"uid-{n}", datetime(2027, 1, 4, 9) + timedelta(days=n))
             for n, href in enumerate(HREFS)}  # fmt: skip
    texts["todo.ics"] = TODO
    with db.transaction(write=True) as conn:
        agenda = calendars.get_collection(conn, "alice/rdv")
        assert agenda is not None
        for href, text in texts.items():
            calendars.put_item(conn, agenda, item_write(prepared_item(text, agenda.path), href))
    yield dav


@pytest.fixture
def generic(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Switch the heads listing off: Radicale answers every PROPFIND itself."""
    return lambda: monkeypatch.setattr(Application, "_etag_listing", lambda *a, **k: None)


@pytest.fixture
def heads_used(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the answers written from item heads."""
    return calls_of(monkeypatch, etag_listing, "item_responses")


def test_quote_href_is_urllib_quote() -> None:
    for text in ["", "a/b c", "é–😀", "%41&<>\"'", "".join(map(chr, range(1, 300)))]:
        assert etag_listing.quote_href(text) == quote(text)


def test_quote_names_is_urllib_quote() -> None:
    names = [*HREFS, "", "%41%", "é–😀", "".join(map(chr, range(1, 300))).replace("/", "")]
    assert etag_listing.quote_names(names) == [quote(name) for name in names]
    assert etag_listing.quote_names([]) == []


@pytest.mark.parametrize(
    "properties",
    [
        ("getetag",),
        ("getcontenttype", "getetag"),
        ("resourcetype", "getetag", "getcontenttype"),
        PROPERTIES,
        ("getetag", "getetag"),
    ],
)
def test_same_bytes_as_radicale(
    call: Call, generic: Callable[[], None], heads_used: list[int], properties: tuple[str, ...]
) -> None:
    body = _propfind_body(properties)
    fast = call("alice", "PROPFIND", "/alice/rdv/", body, depth="1")
    assert heads_used
    generic()
    slow = call("alice", "PROPFIND", "/alice/rdv/", body, depth="1")
    assert streamed(fast) and not streamed(slow)
    assert unsized(fast) == unsized(slow)
    assert fast[0].startswith("207")
    for href in HREFS:
        assert f"<href>/dav/alice/rdv/{quote(href)}</href>".encode() in fast[1]


def test_colleague_gets_the_listing_other_service_gets_refused(
    call: Call, generic: Callable[[], None], heads_used: list[int]
) -> None:
    body = _propfind_body(("getetag",))
    fast = [call(login, "PROPFIND", path, body, depth="1") for login, path in ASKED]
    assert len(heads_used) == 1  # only bob's listing of alice's rdv
    assert fast[0][0].startswith("207") and b"plain.ics" in fast[0][1]
    assert [status[:3] for status, _, _ in fast[1:4]] == ["403", "403", "404"]
    assert not any(b"plain.ics" in answer for _, answer, _ in fast[1:3])
    generic()
    slow = [call(login, "PROPFIND", path, body, depth="1") for login, path in ASKED]
    assert [unsized(a) for a in fast] == [unsized(a) for a in slow]


def test_other_requests_are_left_to_radicale(call: Call, heads_used: list[int]) -> None:
    bodies = [
        b"",  # allprop
        b'<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>',
        b'<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>',
        _propfind_body(("getetag", "getcontentlength")),
        _propfind_body(("getetag", "displayname")),
        b"<not-xml",
    ]
    for body, depth in itertools.product(bodies, ("0", "1")):
        call("alice", "PROPFIND", "/alice/rdv/", body, depth=depth)
    call("alice", "PROPFIND", "/alice/rdv/", _propfind_body(("getetag",)), depth="0")
    assert not heads_used


def _sync_body(properties: tuple[str, ...], token: str = "", limit: int | None = None) -> bytes:
    props = "".join(f"<D:{p}/>" for p in properties)
    nresults = f"<D:limit><D:nresults>{limit}</D:nresults></D:limit>" if limit else ""
    return (
        f'<D:sync-collection xmlns:D="DAV:"><D:sync-token>{token}</D:sync-token>'
        f"<D:sync-level>1</D:sync-level><D:prop>{props}</D:prop>{nresults}</D:sync-collection>"
    ).encode()


@pytest.fixture
def generic_sync(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Switch the heads listing of first syncs off: Radicale answers them."""
    return lambda: monkeypatch.setattr(Application, "_sync_listing", lambda *a, **k: None)


@pytest.mark.parametrize(
    ("properties", "limit"),
    [
        (("getetag",), None),
        (("getcontenttype", "getetag"), None),
        (("getetag", "getetag"), None),
        (("getetag",), 3),
        (("getetag",), 1),
        (("getetag",), 100),
    ],
)
def test_first_sync_same_bytes_as_radicale(
    call: Call,
    generic_sync: Callable[[], None],
    heads_used: list[int],
    properties: tuple[str, ...],
    limit: int | None,
) -> None:
    body = _sync_body(properties, limit=limit)
    fast = call("alice", "REPORT", "/alice/rdv/", body, depth="1")
    assert heads_used
    generic_sync()
    slow = call("alice", "REPORT", "/alice/rdv/", body, depth="1")
    assert streamed(fast) and not streamed(slow)
    assert unsized(fast) == unsized(slow)
    assert fast[0].startswith("207")
    listed = fast[1].count(b"<response><href>/dav/alice/rdv/")
    assert listed == (len(HREFS) + 1 if limit is None else min(limit, len(HREFS) + 1))
    assert (b"507 Insufficient Storage" in fast[1]) == (limit is not None and limit <= len(HREFS))


def test_first_sync_then_the_rest_from_its_token(call: Call, heads_used: list[int]) -> None:
    """A limited first sync's token leads a generic sync to exactly the rest."""
    first = call("alice", "REPORT", "/alice/rdv/", _sync_body(("getetag",), limit=2))
    token = first[1].split(b"<sync-token>")[1].split(b"</sync-token>")[0].decode()
    rest = call("alice", "REPORT", "/alice/rdv/", _sync_body(("getetag",), token=token))
    assert len(heads_used) == 1
    hrefs = [quote(h).encode() for h in [*HREFS, "todo.ics"]]
    assert [h for h in hrefs if b"/" + h + b"<" in first[1]] == hrefs[:2]
    assert [h for h in hrefs if b"/" + h + b"<" in rest[1]] == hrefs[2:]


def test_first_sync_refusals_are_radicale_s(
    call: Call, generic_sync: Callable[[], None], heads_used: list[int]
) -> None:
    body = _sync_body(("getetag",))
    fast = [call(login, "REPORT", path, body) for login, path in ASKED]
    assert len(heads_used) == 1  # only bob's sync of alice's rdv
    assert fast[0][0].startswith("207") and b"plain.ics" in fast[0][1]
    assert not any(b"plain.ics" in answer for _, answer, _ in fast[1:3])
    generic_sync()
    slow = [call(login, "REPORT", path, body) for login, path in ASKED]
    assert [unsized(a) for a in fast] == [unsized(a) for a in slow]


def test_other_syncs_are_left_to_radicale(call: Call, heads_used: list[int]) -> None:
    token = call("alice", "REPORT", "/alice/rdv/", _sync_body(("getetag",)))[1]
    heads_used.clear()
    current = token.split(b"<sync-token>")[1].split(b"</sync-token>")[0].decode()
    bodies = [
        _sync_body(("getetag",), token=current),
        _sync_body(("getetag", "getlastmodified")),
        _sync_body(("getetag", "calendar-data")),
        b'<D:sync-collection xmlns:D="DAV:"><D:sync-token/><D:sync-level>1</D:sync-level>'
        b"</D:sync-collection>",
    ]
    for body in bodies:
        assert call("alice", "REPORT", "/alice/rdv/", body)[0].startswith("207")
    assert not heads_used
