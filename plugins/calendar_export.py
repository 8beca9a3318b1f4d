"""A whole calendar collection as one iCalendar object (GET on the collection).

Same output as Radicale's: every component of every item inside one VCALENDAR,
each VTIMEZONE once per TZID, the collection's display name and description
as X-WR-CALNAME / X-WR-CALDESC.  Written in pieces as the stored texts come
out of the database, a page at a time, so that a 10,000-event agenda is never
held whole (about 25 MB): a first pass over the texts collects the VTIMEZONEs
(which come first), a second writes the other components.  The pieces are
encoded as they are cut: agendas hold characters beyond Latin-1 (a
typographic dash is enough), which Python stores at two or four bytes each,
while their UTF-8 is barely longer than ASCII.

Components are cut out of the texts as slices, found with ``str.find``, not
line by line (a per-line loop was nine tenths of the export's time).  That
relies on what a stored text is: the output of a serializer (vobject's for
what Radicale stores, icalendar's for a masked one), upper-case BEGIN/END
lines ending in CRLF, a folded line starting with a space, one VCALENDAR.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import vobject

_HEADER_END = "\r\nEND:VCALENDAR\r\n"
_TIMEZONE = "BEGIN:VTIMEZONE\r\n"
PIECE = 64 * 1024  # characters of components written together
_KNOWN_ZONES = 1024  # distinct VTIMEZONE texts whose TZID is remembered


def _components(text: str) -> Iterator[tuple[int, int]]:
    """Where the components directly inside an item's VCALENDAR lie in its
    text, as (start, end) slices, each from its BEGIN line to the CRLF ending
    its END line (the one of the same name at the same depth)."""
    at = text.find("\r\nBEGIN:")
    while at >= 0:
        start = at + 2
        line_end = text.find("\r\n", start)
        name = text[start + len("BEGIN:") : line_end]
        begin, end = f"\r\nBEGIN:{name}\r\n", f"\r\nEND:{name}\r\n"
        depth, after = 1, line_end
        while depth:
            closing = text.find(end, after)
            if closing < 0:
                return  # never closed: not a component
            opening = text.find(begin, after, closing)
            if opening >= 0:  # the same name nested inside
                depth, after = depth + 1, opening + len(begin) - 2
            else:
                depth, after = depth - 1, closing + len(end) - 2
        yield start, after + 2
        at = text.find("\r\nBEGIN:", after)


def _tzid(block: str) -> str | None:
    """The TZID of a VTIMEZONE block: its own ``TZID:`` line (not one of its
    observances'), the first physical line of it; None without one (the block
    is then written as any other component)."""
    depth = 0
    tzid = None
    for line in block.split("\r\n"):
        upper = line.upper()
        if upper.startswith("BEGIN:"):
            depth += 1
        elif upper.startswith("END:"):
            depth -= 1
        elif depth == 1 and upper.startswith("TZID:"):
            tzid = line[len("TZID:") :]
    return tzid


class _Zones:
    """TZIDs of the VTIMEZONE blocks met, by block: an agenda repeats the
    same few blocks in every item, each read once."""

    def __init__(self) -> None:
        self._known: dict[str, str | None] = {}

    def tzid(self, block: str) -> str | None:
        try:
            return self._known[block]
        except KeyError:
            if len(self._known) >= _KNOWN_ZONES:
                self._known.clear()
            found = self._known[block] = _tzid(block)
            return found


def export_pieces(
    texts: Callable[[], Iterable[str]],
    name: str | None,
    description: str | None,
    encoding: str = "utf-8",
) -> Iterator[bytes]:
    """The calendar of the item texts ``texts()`` yields (in order; it is
    called twice) as one iCalendar object, encoded, in pieces."""
    envelope = vobject.iCalendar()
    for prop, value in (("X-WR-CALNAME", name), ("X-WR-CALDESC", description)):
        if value:
            line = envelope.add(prop)
            line.value_param = "TEXT"
            line.value = value
    header = envelope.serialize()
    cut = header.find(_HEADER_END) + 2
    yield header[:cut].encode(encoding)
    zones = _Zones()
    timezones: dict[str, str] = {}
    for text in texts():
        if _TIMEZONE not in text:
            continue
        for start, end in _components(text):
            if text.startswith(_TIMEZONE, start):
                block = text[start:end]
                tzid = zones.tzid(block)
                if tzid is not None and tzid not in timezones:
                    timezones[tzid] = block
    if timezones:
        yield "".join(timezones.values()).encode(encoding)
    del timezones
    piece: list[str] = []
    size = 0
    for text in texts():
        for start, end in _components(text):
            if text.startswith(_TIMEZONE, start) and zones.tzid(text[start:end]) is not None:
                continue
            piece.append(text[start:end])
            size += end - start
        if size >= PIECE:
            yield "".join(piece).encode(encoding)
            piece, size = [], 0
    piece.append(header[cut:])
    yield "".join(piece).encode(encoding)
