"""A ``calendar-query`` for whole calendar objects in a time range, answered
from the occurrence index and the stored texts.

Clients fill a week or month view with ``getetag`` and ``calendar-data`` (or
``getetag`` alone, then a multiget) filtered on VEVENTs in a time range.
Radicale builds an item per candidate, an ElementTree response each, then
serialises the tree: most of the request's time.  Here the candidates come
from ``items_in_range`` with their texts, and the responses are written as
the bytes Radicale's serialiser produces for them (the tests compare both
answers).  A candidate whose stored occurrences stop before the window's end
(a long series) is tested by Radicale's own filter, as the generic path tests
it.  The same writer serves the expanded queries of ``plugins.expand_report``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from http import client
from typing import Protocol, TypeVar
from xml.sax.saxutils import escape

from radicale import xmlutils
from radicale.item import filter as radicale_filter

from plugins.etag_listing import PIECE, quote_href, quote_names

PROP = xmlutils.make_clark("D:prop")
FILTER = xmlutils.make_clark("C:filter")
_COMP = xmlutils.make_clark("C:comp-filter")
_TIME_RANGE = xmlutils.make_clark("C:time-range")
ETAG = xmlutils.make_clark("D:getetag")
DATA = xmlutils.make_clark("C:calendar-data")
_OK = xmlutils.make_response(client.OK)
_HEAD = "<?xml version='1.0' encoding='{encoding}'?>\n<multistatus xmlns=\"DAV:\"{caldav}>"
_CALDAV = f' xmlns:C="{xmlutils.NAMESPACES["C"]}"'


@dataclass(frozen=True)
class QueryShape:
    """A calendar-query on VEVENTs in a time range, for etags and calendar data."""

    properties: list[str]  # getetag and calendar-data, in the request's order
    data: ET.Element | None  # the calendar-data element asked for
    filter: ET.Element
    window: tuple[int, int]  # the time range, as Radicale's prefilter reads it


def _only(element: ET.Element, tag: str, name: str | None = None) -> ET.Element | None:
    if len(element) != 1 or element[0].tag != tag:
        return None
    if name is not None and element[0].get("name", "").upper() != name:
        return None
    return element[0]


def shape(root: ET.Element | None) -> QueryShape | None:
    """The query when it asks for etags and calendar data (each at most once
    for the data) of the VEVENTs in one time range, else None."""
    if root is None or root.tag != xmlutils.make_clark("C:calendar-query"):
        return None
    if sorted(child.tag for child in root) != sorted((PROP, FILTER)):
        return None
    prop = root.find(PROP)
    filter_ = root.find(FILTER)
    assert prop is not None and filter_ is not None
    tags = [child.tag for child in prop]
    if not tags or any(tag not in (ETAG, DATA) for tag in tags) or tags.count(DATA) > 1:
        return None
    calendar = _only(filter_, _COMP, "VCALENDAR")
    event = _only(calendar, _COMP, "VEVENT") if calendar is not None else None
    time_range = _only(event, _TIME_RANGE) if event is not None else None
    if time_range is None or time_range.attrib.keys() - {"start", "end"}:
        return None
    try:
        _, start, end, _ = radicale_filter.simplify_prefilters([filter_], "VCALENDAR")
    except ValueError:  # a malformed range: Radicale answers it
        return None
    return QueryShape(tags, prop.find(DATA), filter_, (start, end))


def parse(root: ET.Element | None) -> QueryShape | None:
    """The query when it asks for whole calendar objects (calendar-data
    without children or attributes, or etags only), else None."""
    query = shape(root)
    if query is None or (query.data is not None and (len(query.data) or query.data.attrib)):
        return None
    return query


def too_many_events(texts: Sequence[str], cap: int) -> bool:
    """Whether the texts may hold more than ``cap`` VEVENTs as Radicale counts
    them for its ``max_expand_occurrence`` (then Radicale answers)."""
    # Radicale counts the lines that read BEGIN:VEVENT once upper-cased: each
    # is an occurrence in the upper-cased text (faster than a search ignoring case).
    return bool(cap) and sum(text.upper().count("BEGIN:VEVENT") for text in texts) > cap


class Found(Protocol):
    @property
    def href(self) -> str: ...

    @property
    def etag(self) -> str: ...


F = TypeVar("F", bound=Found)


def multistatus(
    collection_href: str,
    properties: Sequence[str],
    found: Sequence[F],
    calendar_data: Callable[[F], str],
    encoding: str,
) -> Iterator[bytes]:
    """Radicale's multistatus of a calendar-query, ``PIECE`` responses at a
    time (DAV: as the default namespace, CalDAV as ``C`` when calendar data
    is written); each calendar data written only when its piece comes."""
    if not found:
        yield (_HEAD.format(encoding=encoding, caldav="")[:-1] + " />").encode(encoding)
        return
    caldav = _CALDAV if DATA in properties else ""
    yield _HEAD.format(encoding=encoding, caldav=caldav).encode(encoding)
    prefix = quote_href(collection_href)
    hrefs = [prefix + name for name in quote_names([item.href for item in found])]
    for start in range(0, len(found), PIECE):
        parts = []
        for item, href in zip(
            found[start : start + PIECE], hrefs[start : start + PIECE], strict=True
        ):
            props = "".join(
                f"<getetag>{escape(item.etag)}</getetag>"
                if tag == ETAG
                else f"<C:calendar-data>{escape(calendar_data(item))}</C:calendar-data>"
                for tag in properties
            )
            parts.append(
                f"<response><href>{href}</href><propstat><prop>"
                f"{props}</prop><status>{_OK}</status></propstat></response>"
            )
        yield "".join(parts).encode(encoding)
    yield b"</multistatus>"
