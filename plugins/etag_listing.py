"""The items' part of a PROPFIND Depth 1 or of an initial sync-collection on a
calendar, written from item heads.

Clients poll a calendar with PROPFIND Depth 1 for ``getetag`` (some add
``getcontenttype``, ``resourcetype`` or ``getlastmodified``) to see what
changed.  Radicale answers it by building an item object and an ElementTree
response per calendar object, then serialising the whole tree: at 10,000
events that is most of a second and twenty megabytes for one request.  These
properties are columns of the items table, so the items' responses are written
here directly as the bytes Radicale's serialiser produces for them (the tests
compare both answers byte for byte); the request's checks and the collection's
own response (or the sync token) stay Radicale's (see ``Application._etag_listing``
and ``Application._sync_listing``).  A first sync-collection for etags lists
the same items with the same responses, in the order of the change log.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Sequence
from http import client
from xml.sax.saxutils import escape

from radicale import xmlutils

from plugins.storage import http_date
from storage.calendars import ItemHead

# Radicale serialises DAV: as the default namespace: its elements have no prefix.
_PROPERTY_TEMPLATES = {
    xmlutils.make_clark("D:getetag"): "<getetag>{etag}</getetag>",
    xmlutils.make_clark("D:getlastmodified"): "<getlastmodified>{modified}</getlastmodified>",
    xmlutils.make_clark("D:getcontenttype"): "<getcontenttype>{content_type}</getcontenttype>",
    xmlutils.make_clark("D:resourcetype"): "<resourcetype />",
}
_MIMETYPE = xmlutils.OBJECT_MIMETYPES["VCALENDAR"]
# What ``urllib.parse.quote`` (Radicale's href encoding) leaves as it is.
_UNQUOTED = re.compile(rb"[^A-Za-z0-9_.~/-]")
_PERCENT = [b"%%%02X" % byte for byte in range(256)]
PIECE = 500  # responses encoded and sent together


def quote_href(href: str) -> str:
    """``urllib.parse.quote(href)``, several times faster on hrefs that need few
    escapes (it encodes byte by byte in Python; this only visits the escapes)."""
    return _UNQUOTED.sub(lambda m: _PERCENT[m[0][0]], href.encode()).decode("ascii")


def requested_properties(root: ET.Element | None) -> list[str] | None:
    """The properties a PROPFIND body asks for, in its order, when item heads
    answer all of them; None for any other body (allprop, propname, an empty
    or malformed body, another property)."""
    if root is None or root.tag != xmlutils.make_clark("D:propfind") or len(root) != 1:
        return None
    prop = root[0]
    if prop.tag != xmlutils.make_clark("D:prop") or len(prop) == 0:
        return None
    tags = [child.tag for child in prop]
    return tags if all(tag in _PROPERTY_TEMPLATES for tag in tags) else None


# What a REPORT answers found for an item (other properties it answers 404).
_REPORT_PROPERTIES = frozenset(
    xmlutils.make_clark(tag) for tag in ("D:getetag", "D:getcontenttype")
)
_SYNC_CHILDREN = frozenset(
    xmlutils.make_clark(tag) for tag in ("D:sync-token", "D:sync-level", "D:prop", "D:limit")
)


def initial_sync_properties(root: ET.Element | None) -> list[str] | None:
    """The properties an initial sync-collection (no token) asks for, in its
    order, when item heads answer all of them; None for any other body."""
    if root is None or root.tag != xmlutils.make_clark("D:sync-collection"):
        return None
    if any(child.tag not in _SYNC_CHILDREN for child in root):
        return None
    token = root.find(xmlutils.make_clark("D:sync-token"))
    if token is not None and (token.text or "").strip():
        return None
    prop = root.find(xmlutils.make_clark("D:prop"))
    if prop is None or len(prop) == 0:
        return None
    tags = [child.tag for child in prop]
    return tags if all(tag in _REPORT_PROPERTIES for tag in tags) else None


def item_responses(
    collection_href: str, heads: Iterable[ItemHead], properties: Sequence[str], encoding: str
) -> Iterator[bytes]:
    """One ``DAV:response`` per item, as Radicale writes them inside the
    multistatus of a PROPFIND or of a REPORT (the same for these properties),
    encoded ``PIECE`` responses at a time.

    ``collection_href`` is the collection's unquoted href with its trailing
    slash; every property asked for is found (200) for a calendar object.
    """
    template = (
        "<response><href>{href}</href><propstat><prop>"
        + "".join(_PROPERTY_TEMPLATES[tag] for tag in properties)
        + f"</prop><status>{xmlutils.make_response(client.OK)}</status></propstat></response>"
    )
    prefix = quote_href(collection_href)
    dates: dict[int, str] = {}  # items written together share their time
    parts = []
    for head in heads:
        modified = dates.get(head.modified_at)
        if modified is None:
            modified = dates[head.modified_at] = http_date(head.modified_at)
        content_type = f"{_MIMETYPE};charset={encoding}"
        if head.component:
            content_type += f";component={head.component}"
        parts.append(
            template.format(
                href=prefix + quote_href(head.href),
                etag=escape(head.etag),
                modified=modified,
                content_type=escape(content_type),
            )
        )
        if len(parts) == PIECE:
            yield "".join(parts).encode(encoding)
            parts = []
    if parts:
        yield "".join(parts).encode(encoding)
