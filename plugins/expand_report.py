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

from radicale import xmlutils

from plugins import range_report
from plugins.expansion import Expansion

_EXPAND = xmlutils.make_clark("C:expand")
_LIMIT_SET = xmlutils.make_clark("C:limit-recurrence-set")
_FORMAT = "%Y%m%dT%H%M%SZ"


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


def parse(root: ET.Element | None) -> ExpandQuery | None:
    """The query when it has the shape answered here, else None."""
    query = range_report.shape(root)
    if query is None or query.data is None:
        return None
    data = query.data
    if len(data) != 1 or data[0].tag not in (_EXPAND, _LIMIT_SET) or data.attrib:
        return None
    limits = _range(data[0])
    if limits is None:
        return None
    expanding = data[0].tag == _EXPAND
    return ExpandQuery(
        query.properties,
        query.window,
        limits if expanding else None,
        None if expanding else limits,
    )


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
    """The multistatus, written as Radicale writes it (see
    ``range_report.multistatus``)."""
    return range_report.multistatus(
        collection_href,
        query.properties,
        matches,
        lambda found: found.calendar_data(query),
        encoding,
    )
