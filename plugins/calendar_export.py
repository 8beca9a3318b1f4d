"""A whole calendar collection as one iCalendar object (GET on the collection).

Same output as Radicale's: every component of every item inside one VCALENDAR,
each VTIMEZONE once per TZID, the collection's display name and description
as X-WR-CALNAME / X-WR-CALDESC.  Written in pieces as the stored texts come
out of the database, a page at a time, so that a 10,000-event agenda is never
held whole (about 25 MB).  The VTIMEZONEs come first: the texts are read once,
their VTIMEZONEs kept (one per TZID) and their other components written to a
spool (in memory while small, then a temporary file), sent after the
VTIMEZONEs.  The pieces are encoded as they are cut: agendas hold characters beyond Latin-1 (a
typographic dash is enough), which Python stores at two or four bytes each,
while their UTF-8 is barely longer than ASCII.

Components are cut out of the texts as slices, found with ``str.find``, not
line by line (a per-line loop was nine tenths of the export's time).  That
relies on what a stored text is: the output of a serializer (vobject's for
what Radicale stores, icalendar's for a masked one), one VCALENDAR whose
properties come before its components, upper-case BEGIN/END lines ending in
CRLF, a folded line starting with a space.  Once no VTIMEZONE is left in an
item, the rest of its components is one slice, up to its END:VCALENDAR.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from typing import IO

import vobject

_HEADER_END = "\r\nEND:VCALENDAR\r\n"
_BEGIN = "\r\nBEGIN:"
_TIMEZONE = "BEGIN:VTIMEZONE\r\n"
_ANOTHER_TIMEZONE = "\r\n" + _TIMEZONE
_CALENDAR_END = "\r\nEND:VCALENDAR"
_TZID = "\r\nTZID:"
PIECE = 64 * 1024  # characters of components written to the spool together
_SENT_PIECE = 256 * 1024  # bytes of the spool sent together
_SPOOL_IN_MEMORY = 1024 * 1024  # bytes of components spooled before a file is used


def _component_end(text: str, start: int) -> int:
    """Where the component whose BEGIN line starts at ``start`` ends (after
    the CRLF of its END line, the one of the same name at the same depth);
    -1 if it is never closed."""
    line_end = text.find("\r\n", start)
    name = text[start + len("BEGIN:") : line_end]
    begin, end = f"\r\nBEGIN:{name}\r\n", f"\r\nEND:{name}\r\n"
    depth, after = 1, line_end
    while depth:
        closing = text.find(end, after)
        if closing < 0:
            return -1
        opening = text.find(begin, after, closing)
        if opening >= 0:  # the same name nested inside
            depth, after = depth + 1, opening + len(begin) - 2
        else:
            depth, after = depth - 1, closing + len(end) - 2
    return after + 2


def _tzid(block: str) -> str | None:
    """The TZID of a VTIMEZONE block, as its TZID line starts (the one line
    of its own: neither a second one nor one in an observance is stored);
    None without one (the block is then written as any other component)."""
    at = block.find(_TZID)
    if at < 0:
        return None
    at += len(_TZID)
    return block[at : block.find("\r\n", at)]


class _Parts:
    """Cuts item texts into their components.  An agenda repeats the same
    VTIMEZONE in every item: the last one met is recognised by comparing it
    in place, not searched for again."""

    def __init__(self) -> None:
        self._last = ""
        self._last_tzid: str | None = None

    def _timezone(self, text: str, start: int) -> tuple[int, str | None]:
        """The end and TZID of the VTIMEZONE starting at ``start`` (end -1
        if it is never closed)."""
        if self._last and text.startswith(self._last, start):
            return start + len(self._last), self._last_tzid
        end = _component_end(text, start)
        if end >= 0:
            self._last = text[start:end]
            self._last_tzid = _tzid(self._last)
        return end, self._last_tzid

    def of(self, text: str) -> Iterator[tuple[int, int, str | None]]:
        """The components directly inside an item's VCALENDAR as slices
        (start, end, TZID): the TZID of a VTIMEZONE that has one, else None;
        the components after the last VTIMEZONE come as one slice."""
        at = text.find(_BEGIN)
        stop = text.rfind(_CALENDAR_END) + 2
        while 0 <= at < stop:
            start = at + 2
            if text.find(_ANOTHER_TIMEZONE, at, stop) < 0:
                yield start, stop, None
                return
            if text.startswith(_TIMEZONE, start):
                end, tzid = self._timezone(text, start)
            else:
                end, tzid = _component_end(text, start), None
            if end < 0:
                return
            yield start, end, tzid
            at = text.find(_BEGIN, end - 2, stop)


def export_pieces(
    texts: Iterable[str],
    name: str | None,
    description: str | None,
    encoding: str = "utf-8",
) -> Iterator[bytes]:
    """The calendar of the item ``texts`` (in order) as one iCalendar
    object, encoded, in pieces."""
    envelope = vobject.iCalendar()
    for prop, value in (("X-WR-CALNAME", name), ("X-WR-CALDESC", description)):
        if value:
            line = envelope.add(prop)
            line.value_param = "TEXT"
            line.value = value
    header = envelope.serialize()
    cut = header.find(_HEADER_END) + 2
    yield header[:cut].encode(encoding)
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
        timezones = _spool_components(texts, spool, encoding)
        if timezones:
            yield "".join(timezones.values()).encode(encoding)
        del timezones
        spool.seek(0)
        while piece := spool.read(_SENT_PIECE):
            yield piece
    yield header[cut:].encode(encoding)


def _spool_components(texts: Iterable[str], spool: IO[bytes], encoding: str) -> dict[str, str]:
    """Write the components of ``texts`` but their VTIMEZONEs to ``spool``,
    encoded; return the VTIMEZONEs, the first one of each TZID."""
    parts = _Parts()
    timezones: dict[str, str] = {}
    piece: list[str] = []
    size = 0
    for text in texts:
        for start, end, tzid in parts.of(text):
            if tzid is None:
                piece.append(text[start:end])
                size += end - start
            elif tzid not in timezones:
                timezones[tzid] = text[start:end]
        if size >= PIECE:
            spool.write("".join(piece).encode(encoding))
            piece, size = [], 0
    spool.write("".join(piece).encode(encoding))
    return timezones
