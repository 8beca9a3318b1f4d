"""The repetition rules of an iCalendar text, read from its lines.

A PUT's text is parsed once, by Radicale (vobject), and that parse is where a
rule that never produces an occurrence would cost minutes of CPU
(``plugins.application`` refuses those first).  Finding the rules and their
components' starts needs no parse of the calendar: the content lines are
unfolded and read as they come, each RRULE paired with the DTSTART of the
component that holds it (a VEVENT, a VTODO, a time zone's observance).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime


def _unfolded(text: str) -> Iterator[str]:
    current = ""
    for line in text.splitlines():
        if line[:1] in (" ", "\t"):
            current += line[1:]
            continue
        if current:
            yield current
        current = line
    if current:
        yield current


def _moment(value: str) -> datetime | None:
    """A DTSTART value (a date, a floating or UTC time) as a naive datetime;
    None when it is not one (Radicale's parser then says why)."""
    value = value.strip().rstrip("Zz")
    for layout in ("%Y%m%dT%H%M%S", "%Y%m%d"):
        try:
            return datetime.strptime(value, layout)
        except ValueError:
            continue
    return None


def rules_with_starts(text: str) -> Iterator[tuple[str, datetime]]:
    """Each RRULE value with the start of the component holding it, in the
    order of the text; a rule whose component has no readable start is left
    out."""
    stack: list[tuple[datetime | None, list[str]]] = []
    for line in _unfolded(text):
        name, _, value = line.partition(":")
        name = name.split(";", 1)[0].strip().upper()
        if name == "BEGIN":
            stack.append((None, []))
        elif name == "END" and stack:
            start, rules = stack.pop()
            if start is not None:
                yield from ((rule, start) for rule in rules)
        elif name == "DTSTART" and stack:
            stack[-1] = (_moment(value), stack[-1][1])
        elif name == "RRULE" and stack:
            stack[-1][1].append(value.strip())
