"""A whole calendar collection as one iCalendar object (GET on the collection).

Same output as Radicale's: every component of every item inside one VCALENDAR,
each VTIMEZONE once per TZID, the collection's display name and description
as X-WR-CALNAME / X-WR-CALDESC.  Built from the stored texts as they stream
out of the database, into one list joined once, so a 10,000-event agenda costs
about twice its size in memory rather than several copies of it.  The pieces
are encoded as they are cut: agendas hold characters beyond Latin-1 (a
typographic dash is enough), which Python stores at two or four bytes each,
while their UTF-8 is barely longer than ASCII.
"""

from __future__ import annotations

from collections.abc import Iterable

import vobject

_HEADER_END = "\r\nEND:VCALENDAR\r\n"


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


def export_calendar(
    texts: Iterable[str], name: str | None, description: str | None, encoding: str = "utf-8"
) -> bytes:
    """The calendar of ``texts`` (item texts, in order) as one encoded iCalendar object."""
    envelope = vobject.iCalendar()
    for prop, value in (("X-WR-CALNAME", name), ("X-WR-CALDESC", description)):
        if value:
            line = envelope.add(prop)
            line.value_param = "TEXT"
            line.value = value
    header = envelope.serialize()
    cut = header.find(_HEADER_END) + 2
    timezones: dict[str, bytes] = {}
    components: list[bytes] = []
    for text in texts:
        for tzid, block in _inner_blocks(text):
            if tzid is None:
                components.append(block.encode(encoding))
            elif tzid not in timezones:
                timezones[tzid] = block.encode(encoding)
    head, tail = header[:cut].encode(encoding), header[cut:].encode(encoding)
    return b"".join([head, *timezones.values(), *components, tail])
