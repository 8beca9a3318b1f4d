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
from collections.abc import Iterator, Sequence
from http import client
from xml.sax.saxutils import escape

from radicale import xmlutils

from plugins.storage import http_date
from storage.calendars import ItemHead

# Radicale serialises DAV: as the default namespace: its elements have no
# prefix.  Each ``%s`` is the property's value (a %-template: see
# ``item_responses``).
_PROPERTY_TEMPLATES = {
    xmlutils.make_clark("D:getetag"): "<getetag>%s</getetag>",
    xmlutils.make_clark("D:getlastmodified"): "<getlastmodified>%s</getlastmodified>",
    xmlutils.make_clark("D:getcontenttype"): "<getcontenttype>%s</getcontenttype>",
    xmlutils.make_clark("D:resourcetype"): "<resourcetype />",
}
_MIMETYPE = xmlutils.OBJECT_MIMETYPES["VCALENDAR"]
# What ``urllib.parse.quote`` (Radicale's href encoding) leaves as it is.
_UNQUOTED = re.compile(rb"[^A-Za-z0-9_.~/-]")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.~/-]")
_PERCENT = [b"%%%02X" % byte for byte in range(256)]
PIECE = 500  # responses encoded and sent together


def quote_href(href: str) -> str:
    """``urllib.parse.quote(href)``, several times faster on hrefs that need few
    escapes (it encodes byte by byte in Python; this only visits the escapes)."""
    return _UNQUOTED.sub(lambda m: _PERCENT[m[0][0]], href.encode()).decode("ascii")


def quote_names(names: Sequence[str]) -> list[str]:
    """``urllib.parse.quote`` of each item name (a path component, without
    "/"), done on all of them at once: one replacement over the joined names
    per character that needs escaping ("%" first, as its escape holds one)."""
    joined = "/".join(names)
    unsafe = set(_UNSAFE.findall(joined))
    if "%" in unsafe:
        joined = joined.replace("%", "%25")
        unsafe.discard("%")
    for char in unsafe:
        joined = joined.replace(char, quote_href(char))
    return joined.split("/") if names else []


def _escaped(values: list[str]) -> list[str]:
    """XML escapes of the values, skipped when none of them needs one."""
    joined = "".join(values)
    if "&" in joined or "<" in joined or ">" in joined:
        return list(map(escape, values))
    return values


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
    collection_href: str, heads: Sequence[ItemHead], properties: Sequence[str], encoding: str
) -> Iterator[bytes]:
    """One ``DAV:response`` per item, as Radicale writes them inside the
    multistatus of a PROPFIND or of a REPORT (the same for these properties),
    encoded ``PIECE`` responses at a time.

    ``collection_href`` is the collection's unquoted href with its trailing
    slash; every property asked for is found (200) for a calendar object.
    Each value is computed for all items at once, a column per property.
    """
    template = (
        "<response><href>%s</href><propstat><prop>"
        + "".join(_PROPERTY_TEMPLATES[tag] for tag in properties)
        + f"</prop><status>{xmlutils.make_response(client.OK)}</status></propstat></response>"
    )
    prefix = quote_href(collection_href)
    hrefs = [prefix + name for name in quote_names([head.href for head in heads])]
    columns = [
        hrefs,
        *(_column(tag, heads, encoding) for tag in properties if "%s" in _PROPERTY_TEMPLATES[tag]),
    ]
    rows = list(zip(*columns, strict=True))
    for start in range(0, len(rows), PIECE):
        yield "".join([template % row for row in rows[start : start + PIECE]]).encode(encoding)


def _column(tag: str, heads: Sequence[ItemHead], encoding: str) -> list[str]:
    """The escaped values of one property for every item."""
    if tag == xmlutils.make_clark("D:getetag"):
        return _escaped([head.etag for head in heads])
    if tag == xmlutils.make_clark("D:getlastmodified"):
        dates: dict[int, str] = {}  # items written together share their time
        for head in heads:
            if head.modified_at not in dates:
                dates[head.modified_at] = http_date(head.modified_at)
        return [dates[head.modified_at] for head in heads]
    types: dict[str, str] = {}
    for head in heads:
        if head.component not in types:
            content_type = f"{_MIMETYPE};charset={encoding}"
            if head.component:
                content_type += f";component={head.component}"
            types[head.component] = escape(content_type)
    return [types[head.component] for head in heads]
