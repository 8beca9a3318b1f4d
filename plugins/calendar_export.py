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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import vobject

_HEADER_END = "\r\nEND:VCALENDAR\r\n"
PIECE = 64 * 1024  # characters of components written together


def _inner_blocks(text: str) -> Iterable[tuple[str | None, str]]:
    """The components directly inside an item's VCALENDAR, as (TZID or None, text)."""
    depth = 0
    block: list[str] = []
    tzid: str | None = None
    is_timezone = False
    for line in text.split("\r\n"):
        upper = line.upper()
        if upper.startswith("BEGIN:"):
            depth += 1
            if depth == 2:
                block, tzid, is_timezone = [], None, upper == "BEGIN:VTIMEZONE"
        if depth >= 2:
            block.append(line)
            if is_timezone and depth == 2 and upper.startswith("TZID:"):
                tzid = line[len("TZID:") :]
        if upper.startswith("END:"):
            if depth == 2:
                yield (tzid if is_timezone else None, "\r\n".join(block) + "\r\n")
            depth -= 1


def _timezones(text: str) -> Iterator[tuple[str, str]]:
    """The VTIMEZONE blocks of an item's text as (TZID, text), without reading
    the rest of it (what the first pass of ``export_pieces`` needs)."""
    found = text.find("BEGIN:VTIMEZONE")
    while found >= 0:
        end = text.find("END:VTIMEZONE\r\n", found)
        if end < 0:
            return
        block = text[found : end + len("END:VTIMEZONE\r\n")]
        for tzid, _ in _inner_blocks(f"BEGIN:VCALENDAR\r\n{block}END:VCALENDAR"):
            if tzid is not None:
                yield tzid, block
        found = text.find("BEGIN:VTIMEZONE", end)


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
    timezones: dict[str, str] = {}
    for text in texts():
        for tzid, block in _timezones(text):
            timezones.setdefault(tzid, block)
    if timezones:
        yield "".join(timezones.values()).encode(encoding)
    del timezones
    piece: list[str] = []
    size = 0
    for text in texts():
        for tzid, block in _inner_blocks(text):
            if tzid is None:
                piece.append(block)
                size += len(block)
        if size >= PIECE:
            yield "".join(piece).encode(encoding)
            piece, size = [], 0
    piece.append(header[cut:])
    yield "".join(piece).encode(encoding)
