"""What the SQL index needs to know about one iCalendar object.

Occurrences are visited with Radicale's own ``visit_time_ranges`` so that the
ranges stored for a series are exactly the ones Radicale's time-range filter
would test; the SQL answer and Radicale's answer cannot disagree.
"""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Any

from radicale import item as radicale_item
from radicale.item import filter as radicale_filter

from booking.recurrence import SERIES_BUDGET, reach
from storage.calendars import FAR_FUTURE, ItemWrite

# Radicale's default for PUT, so that every path accepts exactly what a PUT would.
MAX_RRULE_OCCURRENCES = SERIES_BUDGET
# Occurrences of a series are stored up to this far ahead of now (or of the
# series' start when it starts later), and at most this many; past that the
# storage hands the series to Radicale's exact test.
HORIZON_SECONDS = 3 * 366 * 86400
MAX_RANGES = 2000


def _ts_floor(value: datetime) -> int:
    return math.floor(value.timestamp())


def _ts_ceil(value: datetime) -> int:
    return math.ceil(value.timestamp())


def _single_interval(ranges: list[tuple[int, int]], start: int, end: int) -> bool:
    """True when the ranges cover [start, end) without a gap."""
    reach = start
    for r_start, r_end in sorted(ranges):
        if r_start > reach:
            return False
        reach = max(reach, r_end)
    return reach >= end


def _reach(components: list[Any]) -> int:
    """Where the series' expansion stops (``booking.recurrence.reach``)."""
    found = radicale_filter.TIMESTAMP_MAX
    for component in components:
        rules = [line.value for line in component.contents.get("rrule", [])]
        if rules and hasattr(component, "dtstart"):
            first = radicale_filter.date_to_datetime(component.dtstart.value)
            found = min(found, _ts_floor(reach(rules, first)))
    return found


def item_write(item: radicale_item.Item, href: str) -> ItemWrite:
    """Describe a prepared Radicale item for the calendar repository."""
    component = item.component_name

    def write_for(t_start: int, t_end: int) -> ItemWrite:
        return ItemWrite(
            href=href,
            uid=item.uid,
            etag=item.etag,
            component=component,
            text=item.serialize(),
            t_start=t_start,
            t_end=t_end,
        )

    if not component:
        return write_for(radicale_filter.TIMESTAMP_MIN, radicale_filter.TIMESTAMP_MAX)
    components = [c for c in item.vobject_item.getChildren() if c.name == component]
    if len(components) == 1 and not ({"rrule", "rdate"} & components[0].contents.keys()):
        # One occurrence: Radicale's enclosing range (computed while preparing
        # the item) is exact, no need to visit it again.
        return write_for(*item.time_range)
    ranges: list[tuple[int, int]] = []
    infinite = False
    truncated_at: int | None = None
    horizon: float | None = None
    # Past its reach a series has no occurrence, here as in the booking engine.
    reached = _reach(components)
    cut = False

    def range_fn(start: datetime, end: datetime, _is_recurrence: bool) -> bool:
        nonlocal truncated_at, horizon, cut
        start_ts = _ts_floor(start)
        if start_ts >= reached:
            cut = True
            return True
        if horizon is None:
            horizon = max(time.time(), start_ts) + HORIZON_SECONDS
        if start_ts >= horizon or len(ranges) >= MAX_RANGES:
            truncated_at = start_ts
            return True
        ranges.append((start_ts, _ts_ceil(end)))
        return False

    def infinity_fn(_start: datetime) -> bool:
        nonlocal infinite
        infinite = True
        return False

    radicale_filter.visit_time_ranges(item.vobject_item, component, range_fn, infinity_fn)
    if not ranges:
        t_start, t_end = radicale_filter.TIMESTAMP_MIN, radicale_filter.TIMESTAMP_MAX
    else:
        t_start = min(s for s, _ in ranges)
        longest = max(e - s for s, e in ranges)
        t_end = (
            min(radicale_filter.TIMESTAMP_MAX, reached + longest)
            if ((infinite and not cut) or truncated_at is not None)
            else max(e for _, e in ranges)
        )
    write = write_for(t_start, t_end)
    if not ranges:
        # A series whose every occurrence is excluded matches no time range.
        write.ranges, write.ranges_until = [], FAR_FUTURE
    elif not (truncated_at is None and _single_interval(ranges, t_start, t_end)):
        write.ranges = ranges
        write.ranges_until = FAR_FUTURE if truncated_at is None else truncated_at
    return write


def prepared_item(text: str, collection_path: str) -> radicale_item.Item:
    """A Radicale item ready to store, read and sanitized as a PUT does it
    (ValueError when it is not one valid calendar object)."""
    components = radicale_item.read_components(text)
    if len(components) != 1:
        raise ValueError("one calendar object expected")
    radicale_item.check_and_sanitize_items(components, MAX_RRULE_OCCURRENCES, tag="VCALENDAR")
    item = radicale_item.Item(collection_path=collection_path, vobject_item=components[0])
    item.prepare()
    return item
