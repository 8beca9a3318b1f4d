"""A ``calendar-query`` asking for expanded instances, answered from expansions.

The shape answered here is the one clients send for a month or week view:
the properties ``getetag`` and ``calendar-data`` with ``<C:expand>`` (or with
``<C:limit-recurrence-set>``), filtered on VEVENTs in a time range.  Every
other query is Radicale's.  Items are found by the SQL occurrence index
(``items_in_range``), their instances by their kept ``Expansion`` (see
``plugins.expansion``); an item with no instance in the window is left out,
as Radicale leaves it out.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http import client
from xml.sax.saxutils import escape

from radicale import xmlutils
from radicale.item import filter as radicale_filter

from plugins.etag_listing import quote_href
from plugins.expansion import Expansion

_PROP = xmlutils.make_clark("D:prop")
_FILTER = xmlutils.make_clark("C:filter")
_COMP = xmlutils.make_clark("C:comp-filter")
_TIME_RANGE = xmlutils.make_clark("C:time-range")
_ETAG = xmlutils.make_clark("D:getetag")
_DATA = xmlutils.make_clark("C:calendar-data")
_EXPAND = xmlutils.make_clark("C:expand")
_LIMIT_SET = xmlutils.make_clark("C:limit-recurrence-set")
_FORMAT = "%Y%m%dT%H%M%SZ"
_OK = xmlutils.make_response(client.OK)


@dataclass(frozen=True)
class ExpandQuery:
    properties: list[str]  # getetag and calendar-data, in the request's order
    window: tuple[int, int]  # the filter's time range
    expand: tuple[int, int] | None  # <C:expand>'s range
    limit_set: tuple[int, int] | None  # <C:limit-recurrence-set>'s range

    @property
    def instances_window(self) -> tuple[int, int]:
        """Where instances are looked for: the time range, within the expand range."""
        if self.expand is None:
            return self.window
        return max(self.window[0], self.expand[0]), min(self.window[1], self.expand[1])


def _range(element: ET.Element) -> tuple[int, int] | None:
    """An expand or limit range (both bounds required, as Radicale requires them)."""
    try:
        start, end = (
            int(datetime.strptime(element.get(name) or "", _FORMAT).replace(tzinfo=UTC).timestamp())
            for name in ("start", "end")
        )
    except ValueError:
        return None
    return (start, end) if start < end else None


def _only(element: ET.Element, tag: str, name: str | None = None) -> ET.Element | None:
    if len(element) != 1 or element[0].tag != tag:
        return None
    if name is not None and element[0].get("name", "").upper() != name:
        return None
    return element[0]


def parse(root: ET.Element | None) -> ExpandQuery | None:
    """The query when it has the shape answered here, else None."""
    if root is None or root.tag != xmlutils.make_clark("C:calendar-query"):
        return None
    if sorted(child.tag for child in root) != sorted((_PROP, _FILTER)):
        return None
    prop = root.find(_PROP)
    assert prop is not None
    tags = [child.tag for child in prop]
    if not tags or any(tag not in (_ETAG, _DATA) for tag in tags) or tags.count(_DATA) != 1:
        return None
    data = prop.find(_DATA)
    assert data is not None
    if len(data) != 1 or data[0].tag not in (_EXPAND, _LIMIT_SET) or data.attrib:
        return None
    limits = _range(data[0])
    calendar = _only(root.find(_FILTER), _COMP, "VCALENDAR")  # type: ignore[arg-type]
    event = _only(calendar, _COMP, "VEVENT") if calendar is not None else None
    time_range = _only(event, _TIME_RANGE) if event is not None else None
    if limits is None or time_range is None:
        return None
    try:
        window = radicale_filter.time_range_timestamps(time_range)
    except ValueError:
        return None
    expanding = data[0].tag == _EXPAND
    return ExpandQuery(tags, window, limits if expanding else None, None if expanding else limits)


@dataclass(frozen=True)
class Match:
    """An item the query finds: its href (unquoted), etag, and what its answer
    is written from (the instances found, the expansion, the text)."""

    href: str
    etag: str
    instances: list[tuple[int, int, int, int, int]]
    expansion: Expansion
    text: str | None

    def calendar_data(self, query: ExpandQuery) -> str:
        if query.limit_set is None:
            return self.expansion.calendar_data(self.instances)
        assert self.text is not None
        return self.expansion.limited(self.text, *query.limit_set)


def match(
    query: ExpandQuery, href: str, etag: str, text: str | None, expansion: Expansion
) -> Match | None:
    """The item's match (``text`` is needed with limit-recurrence-set only);
    None when it has no instance in the query's window."""
    found = expansion.between(*query.instances_window)
    return Match(href, etag, found, expansion, text) if found else None


def multistatus(
    collection_href: str, query: ExpandQuery, matches: list[Match], encoding: str
) -> Iterator[bytes]:
    """The multistatus, a response at a time (Radicale's serialisation: DAV:
    as the default namespace, CalDAV as ``C``), each calendar-data written
    only when its turn comes."""
    yield (
        f"<?xml version='1.0' encoding='{encoding}'?>\n"
        '<multistatus xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
    ).encode(encoding)
    prefix = quote_href(collection_href)
    for found in matches:
        props = "".join(
            f"<getetag>{escape(found.etag)}</getetag>"
            if tag == _ETAG
            else f"<C:calendar-data>{escape(found.calendar_data(query))}</C:calendar-data>"
            for tag in query.properties
        )
        yield (
            f"<response><href>{prefix}{quote_href(found.href)}</href><propstat><prop>"
            f"{props}</prop><status>{_OK}</status></propstat></response>"
        ).encode(encoding)
    yield b"</multistatus>"
