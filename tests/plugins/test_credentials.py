"""One reading of the Basic Authorization header, and the XML depth check."""

from __future__ import annotations

import base64

import pytest

from plugins.credentials import MAX_HEADER, MalformedCredentials, parse_basic
from plugins.xml_depth import MAX_DEPTH, too_deep


def _basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


def test_readable_credentials() -> None:
    assert parse_basic(_basic("alice:pa:ss é".encode())) == ("alice", "pa:ss é")
    assert parse_basic("basic " + _basic(b"a:b")[6:]) == ("a", "b")
    assert parse_basic(None) is None
    assert parse_basic("") is None
    assert parse_basic("Bearer abc") is None


@pytest.mark.parametrize(
    "header",
    [
        "Basic",
        "Basic !!!",
        "Basic YWJj",  # no padding error but no colon: "abc"
        _basic(b"no-colon"),
        _basic(b"\xff\xfe:secret"),  # not UTF-8
        _basic(b":password"),  # no login
        _basic(b"a\x00b:password"),  # NUL in the login
        "Basic \u00e9\u00e9\u00e9\u00e9",  # not ASCII
        "Basicxyz",
        "Basic " + "A" * MAX_HEADER,
    ],
)
def test_malformed_credentials(header: str) -> None:
    with pytest.raises(MalformedCredentials) as raised:
        parse_basic(header)
    assert str(raised.value) == "malformed credentials"  # never the header


def test_xml_depth() -> None:
    assert not too_deep(b"<a>" * MAX_DEPTH + b"</a>" * MAX_DEPTH)
    assert too_deep(b"<a>" * (MAX_DEPTH + 1) + b"</a>" * (MAX_DEPTH + 1))
    assert too_deep(b"<a>" * 60_000)  # stops early, even unclosed
    assert not too_deep(b"not xml at all")
    assert not too_deep(b"")
