"""One reading of an HTTP Basic ``Authorization`` header, for CalDAV and the API.

Radicale's own reading raises on bad base64, a missing colon or non-ASCII
text, which ended as a 500, and the API read the header more leniently than
CalDAV did.  Here a header that is not readable Basic credentials raises
``MalformedCredentials`` (a 401 at either boundary), as wrong ones raise
``WrongCredentials``.  The exception never
carries the header's content, so it cannot reach a log.
"""

from __future__ import annotations

import base64
import binascii

from storage.text import unstorable

# Far above any real login and password; a longer header is refused unread.
MAX_HEADER = 4096


class MalformedCredentials(ValueError):
    """The Authorization header does not hold readable Basic credentials."""

    def __init__(self) -> None:
        super().__init__("malformed credentials")


class WrongCredentials(Exception):
    """Readable credentials that are not right: the login does not exist or
    the password is not its password (one answer for both)."""

    def __init__(self) -> None:
        super().__init__("wrong login or password")


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """(login, password) from a Basic header; None without credentials (no
    header, or another scheme, which calserver does not offer)."""
    if not header:
        return None
    if len(header) > MAX_HEADER:
        raise MalformedCredentials()
    header = header.strip()
    if not header.lower().startswith("basic"):
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic":  # "Basicxyz", which Radicale read as Basic
        raise MalformedCredentials()
    token = token.strip()
    try:
        if not token.isascii():
            raise ValueError(token)
        decoded = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        raise MalformedCredentials() from None
    login, colon, password = decoded.partition(":")
    if not colon or not login or unstorable(login) is not None:
        raise MalformedCredentials()
    return login, password
