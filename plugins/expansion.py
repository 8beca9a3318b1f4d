"""Expanded instances of calendar objects, for ``calendar-query`` with ``<C:expand>``.

Radicale expands an item on every request: it parses the item with vobject,
builds a recurrence set and writes every instance back through vobject, at
several milliseconds per item (a month of a 10,000-event agenda took about
15 s).  Here an item is expanded once, when a query first needs it, into a
compact ``Expansion``: the calendar's own properties, one text per VEVENT of
the item (the master and each overridden instance) without its dates and
recurrence rules, and the instances as integers (start, end, RECURRENCE-ID,
which text).  Expansions are kept in a bounded cache keyed by the item's etag
(a new version of an item has a new etag), so later queries only pick
instances by time and write them.

The instances are those of ``recurring_ical_events`` (RRULE, RDATE, EXDATE,
RECURRENCE-ID overrides, time zones across DST changes); every instance is
written in UTC as RFC 4791 §9.6.5 requires (dates of all-day events stay
dates; floating times are read as UTC, as Radicale's index reads them), with
a RECURRENCE-ID when the item recurs.  Instances are kept up to a horizon
(``HORIZON_SECONDS`` after now or after the first instance, and at most
``MAX_KEPT`` instances); a window past it is expanded for that request only.
"""

from __future__ import annotations

import bisect
import functools
import threading
import time
import zoneinfo
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

import icalendar
import recurring_ical_events

# Properties each instance gets anew (in UTC) or loses (it is one occurrence).
_TIMES = frozenset(
    ("DTSTART", "DTEND", "DURATION", "RECURRENCE-ID", "RRULE", "RDATE", "EXDATE", "EXRULE")
)
HORIZON_SECONDS = 3 * 366 * 86400
MAX_KEPT = 1000
# Series are read in spans of at first this many seconds (see ``_expanded``).
FIRST_SPAN = 900
FEW = 64
LATEST = 253402300799  # 9999-12-31T23:59:59Z: complete to the end of the series
EARLIEST = int(datetime(1900, 1, 1, tzinfo=UTC).timestamp())  # before it, nothing is expanded
# Instance flags: its dates are DATE values; its RECURRENCE-ID is a DATE.
_DATE, _RID_DATE = 1, 2
_NO_RID = -(2**62)


class TooManyInstances(ValueError):
    """A window holds more instances than the server expands for one request."""


@dataclass(slots=True)
class Expansion:
    """One item's instances, complete for those that end after ``since`` and
    start before ``until``."""

    head: str  # BEGIN:VCALENDAR and the calendar's own properties
    variants: list[str]  # VEVENT texts after BEGIN:VEVENT, without dates
    ends_given: list[bool]  # whether the variant has a DTEND or DURATION
    starts: list[int]  # instance starts, sorted (for bisect)
    instances: list[tuple[int, int, int, int, int]]  # start, end, rid, variant, flags
    longest: int  # the longest instance, in seconds
    since: int
    until: int
    master: int  # the variant of the instances not overridden
    overrides: dict[int, int]  # RECURRENCE-ID -> its variant

    def size(self) -> int:
        """Roughly the bytes this expansion holds (for the cache's bound)."""
        return 200 + len(self.head) + sum(map(len, self.variants)) + 120 * len(self.instances)

    def covers(self, start: int, end: int) -> bool:
        return self.since <= start and end <= self.until

    def beyond(self, text: str, start: int, end: int, cap: int) -> Expansion:
        """The instances of a window this expansion does not cover, for this
        request only; TooManyInstances past ``cap``, at once when the kept
        instances were cut at ``MAX_KEPT`` and come so densely that the window
        would hold more than ``cap`` of them (a SECONDLY series: expanding it
        would cost seconds before the refusal)."""
        if cap and len(self.instances) >= MAX_KEPT and self.until > self.starts[0]:
            density = len(self.instances) / (self.until - self.starts[0])
            if density * (end - start) > cap:
                raise TooManyInstances(f"about {density * (end - start):.0f} instances")
        return expand_window(text, start, end, cap)

    def between(self, start: int, end: int) -> list[tuple[int, int, int, int, int]]:
        """Instances overlapping [start, end) as RFC 4791 §9.9 tests them."""
        first = bisect.bisect_left(self.starts, start - self.longest)
        last = bisect.bisect_left(self.starts, end)
        return [
            instance
            for instance in self.instances[first:last]
            if instance[1] > start or (instance[0] == instance[1] and instance[0] >= start)
        ]

    def calendar_data(self, instances: Iterable[tuple[int, int, int, int, int]]) -> str:
        """The item's calendar with these instances, each its own VEVENT in UTC."""
        parts = [self.head]
        for start, end, rid, variant, flags in instances:
            parts.append("BEGIN:VEVENT\r\n")
            if flags & _DATE:
                parts.append(f"DTSTART;VALUE=DATE:{_date(start)}\r\n")
                if self.ends_given[variant]:
                    parts.append(f"DTEND;VALUE=DATE:{_date(end)}\r\n")
            else:
                parts.append(f"DTSTART:{_utc(start)}\r\n")
                if self.ends_given[variant]:
                    parts.append(f"DTEND:{_utc(end)}\r\n")
            if rid != _NO_RID:
                value = f";VALUE=DATE:{_date(rid)}" if flags & _RID_DATE else f":{_utc(rid)}"
                parts.append(f"RECURRENCE-ID{value}\r\n")
            parts.append(self.variants[variant])
        parts.append("END:VCALENDAR\r\n")
        return "".join(parts)

    def limited(self, text: str, start: int, end: int) -> str:
        """The item's text with only the overridden instances that overlap
        [start, end) or replace one there (RFC 4791 §9.6.6); every VEVENT of
        ``text`` is one of the variants, in order."""
        kept = {self.master}
        kept.update(v for rid, v in self.overrides.items() if start <= rid < end)
        kept.update(instance[3] for instance in self.between(start, end))
        return _without_events(text, set(range(len(self.variants))) - kept)


def _without_events(text: str, dropped: set[int]) -> str:
    """``text`` without the VEVENTs at these positions (0 the first)."""
    if not dropped:
        return text
    out: list[str] = []
    depth, index, skipping = 0, -1, False
    for line in text.splitlines(keepends=True):
        upper = line.upper().rstrip("\r\n")
        if upper.startswith("BEGIN:"):
            depth += 1
            if depth == 2 and upper == "BEGIN:VEVENT":
                index += 1
                skipping = index in dropped
        if not skipping:
            out.append(line)
        if upper.startswith("END:"):
            depth -= 1
            if depth == 1:
                skipping = False
    return "".join(out)


def _utc(timestamp: int) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(timestamp))


def _date(timestamp: int) -> str:
    return time.strftime("%Y%m%d", time.gmtime(timestamp))


def _timestamp(value: date) -> tuple[int, bool]:
    """Seconds since the epoch of an iCalendar date or time (dates and floating
    times read as UTC), and whether it is a date."""
    if not isinstance(value, datetime):
        return int(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp()), True
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp()), False


def _properties(text: str) -> Iterator[tuple[str, str, str]]:
    """Each content line of ``text`` as (NAME, VALUE in capitals, the line with
    its folded continuations, CRLF ended); blank lines are skipped."""
    current: list[str] = []
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and current:
            current.append(line)
            continue
        if current:
            yield _described(current)
        current = [line] if line.strip() else []
    if current:
        yield _described(current)


def _described(lines: list[str]) -> tuple[str, str, str]:
    first = lines[0]
    name = first.split(":", 1)[0].split(";", 1)[0].upper()
    value = first.split(":", 1)[1].strip().upper() if ":" in first else ""
    return name, value, "".join(line + "\r\n" for line in lines)


@functools.cache
def _known_zone(tzid: str) -> bool:
    """Whether icalendar resolves this TZID itself (an IANA name)."""
    try:
        zoneinfo.ZoneInfo(tzid)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        return False
    return True


def _split(text: str) -> tuple[str, list[str], str]:
    """The calendar's own property lines; each VEVENT's lines after its BEGIN
    line without its date and recurrence properties, in order; and the
    skeleton ``recurring_ical_events`` reads: the VEVENTs' UID, dates and
    rules only, with the VTIMEZONEs whose TZID icalendar does not know (a
    tenth of the text to parse)."""
    head = ["BEGIN:VCALENDAR\r\n"]
    variants: list[str] = []
    skeleton = ["BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calserver//expand//EN\r\n"]
    depth = 0
    kind = ""  # the VCALENDAR child being read
    variant: list[str] = []
    component: list[str] = []
    tzid = ""
    for name, value, lines in _properties(text):
        if name == "BEGIN":
            depth += 1
            if depth == 2:
                kind, variant, component, tzid = value, [], [lines], ""
                continue
        elif name == "END":
            depth -= 1
            if depth == 1:
                component.append(lines)
                if kind == "VEVENT":
                    variant.append(lines)
                    variants.append("".join(variant))
                    skeleton.extend(component)
                elif kind == "VTIMEZONE" and not _known_zone(tzid):
                    skeleton.extend(component)
                kind = ""
                continue
        if depth == 1 and name not in ("BEGIN", "END"):
            head.append(lines)
        elif kind == "VEVENT":
            if depth > 2 or name not in _TIMES:
                variant.append(lines)
            if depth == 2 and (name in _TIMES or name == "UID"):
                component.append(lines)
        elif kind == "VTIMEZONE":
            component.append(lines)
            if depth == 2 and name == "TZID":
                tzid = lines.split(":", 1)[1].strip()
    skeleton.append("END:VCALENDAR\r\n")
    return "".join(head), variants, "".join(skeleton)


class _Builder:
    """Turns the item's text into an Expansion's parts."""

    def __init__(self, text: str) -> None:
        self.head, self.variants, skeleton = _split(text)
        calendar = icalendar.Calendar.from_ical(skeleton)
        self.query = recurring_ical_events.of(calendar, components=["VEVENT"])
        events = [c for c in calendar.subcomponents if c.name == "VEVENT"]
        if len(events) != len(self.variants):
            raise ValueError("the calendar's VEVENTs could not be told apart")
        self.ends_given = [("DTEND" in e) or ("DURATION" in e) for e in events]
        self.overrides: dict[int, int] = {}
        self.master = 0
        self.recurring = False
        for index, event in enumerate(events):
            rid = event.get("RECURRENCE-ID")
            if rid is not None:
                self.overrides[_timestamp(rid.dt)[0]] = index
                self.recurring = True
            else:
                self.master = index
                self.recurring |= "RRULE" in event or "RDATE" in event

    def instance(self, occurrence: icalendar.Event) -> tuple[int, int, int, int, int]:
        start, is_date = _timestamp(occurrence.start)
        end = _timestamp(occurrence.end)[0]
        rid, flags = _NO_RID, _DATE if is_date else 0
        variant = self.master
        if self.recurring:
            original = occurrence.get("RECURRENCE-ID")
            rid, rid_is_date = _timestamp(original.dt) if original is not None else (start, is_date)
            variant = self.overrides.get(rid, self.master)
            flags |= _RID_DATE if rid_is_date else 0
        return start, end, rid, variant, flags

    def expansion(
        self, instances: list[tuple[int, int, int, int, int]], since: int, until: int
    ) -> Expansion:
        """An Expansion of these instances (sorted)."""
        return Expansion(
            head=self.head,
            variants=self.variants,
            ends_given=self.ends_given,
            starts=[i[0] for i in instances],
            instances=instances,
            longest=max((i[1] - i[0] for i in instances), default=0),
            since=since,
            until=until,
            master=self.master,
            overrides=self.overrides,
        )


def expand(text: str, first: int, last: int, now: float | None = None) -> Expansion:
    """The item's instances from ``first`` (its first start, as indexed, or
    ``HORIZON_SECONDS`` before now if later) up to ``last`` (its last end, as
    indexed) or ``HORIZON_SECONDS`` after now (or after ``first``), and at most
    ``MAX_KEPT`` of them; ValueError when the text is not readable iCalendar."""
    moment = int(now if now is not None else time.time())
    since = max(first, moment - HORIZON_SECONDS, EARLIEST)
    horizon = max(moment, since) + HORIZON_SECONDS
    kept = _expanded(_Builder(text), since, min(horizon, last), MAX_KEPT)
    if since == max(first, EARLIEST):  # nothing before: complete from the start
        kept.since = EARLIEST
    if last <= horizon and kept.until == last:  # nothing after: complete to the end
        kept.until = LATEST
    return kept


def expand_window(text: str, start: int, end: int, cap: int) -> Expansion:
    """The item's instances overlapping [start, end) only, for a window the
    kept expansion does not cover; TooManyInstances past ``cap``."""
    expansion = _expanded(_Builder(text), max(start, EARLIEST), end, cap or None)
    if expansion.until < end:  # cut at ``cap``
        raise TooManyInstances(f"more than {cap} instances in the window")
    return expansion


def _expanded(builder: _Builder, since: int, until: int, most: int | None) -> Expansion:
    """Instances that end after ``since`` and start before ``until``; with
    ``most``, at most that many and ``until`` brought back to the start of the
    first one left out.

    A series is read a span at a time, the span doubling while it holds few
    instances and halving when it holds many, so that a dense series (one a
    second) costs about ``most`` instances, not a day of them.
    """
    found: set[tuple[int, int, int, int, int]] = set()
    # One second earlier keeps an instance of no duration starting at ``since``.
    low, span = since - 1, (FIRST_SPAN if builder.recurring else until - since + 1)
    while low < until:
        high = min(until, low + span)
        batch = {
            builder.instance(occurrence)
            for occurrence in builder.query.between(
                datetime.fromtimestamp(low, UTC), datetime.fromtimestamp(high, UTC)
            )
        }
        found |= batch
        if most is not None and len(found) > most:
            ordered = sorted(found)
            until = ordered[most][0]
            return builder.expansion([i for i in ordered if i[0] < until], since, until)
        span = span * 2 if len(batch) < FEW else max(span // 2, 60)
        low = high
    return builder.expansion(sorted(i for i in found if i[0] < until), since, until)


class ExpansionCache:
    """Expansions by etag, least recently used dropped past ``max_bytes``."""

    def __init__(self, max_bytes: int = 8 * 1024 * 1024) -> None:
        self._max_bytes = max_bytes
        self._bytes = 0
        self._entries: OrderedDict[str, Expansion] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, etag: str) -> Expansion | None:
        with self._lock:
            found = self._entries.get(etag)
            if found is not None:
                self._entries.move_to_end(etag)
            return found

    def put(self, etag: str, expansion: Expansion) -> None:
        size = expansion.size()
        if size > self._max_bytes:
            return
        with self._lock:
            old = self._entries.pop(etag, None)
            if old is not None:
                self._bytes -= old.size()
            self._entries[etag] = expansion
            self._bytes += size
            while self._bytes > self._max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= dropped.size()
