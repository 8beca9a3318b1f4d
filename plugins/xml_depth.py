"""Refuse XML nested deeper than any WebDAV request needs, before building it.

A 60,000-level body parsed fine but then overflowed the recursion of the code
that walks the tree (a 500).  The check streams the body through expat and
stops at the first element beyond the limit, and at the first entity
declaration (those are refused anyway, and are not expanded here).
"""

from __future__ import annotations

import contextlib
from xml.parsers import expat

# CalDAV's deepest requests (calendar-query filters) need about a dozen levels.
MAX_DEPTH = 100


class _Stop(Exception):
    pass


def too_deep(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether ``body`` opens more than ``limit`` nested elements (malformed
    XML is not too deep: the real parser reports it)."""
    parser = expat.ParserCreate()
    depth = 0
    deepest = False

    def start(*_: object) -> None:
        nonlocal depth, deepest
        depth += 1
        if depth > limit:
            deepest = True
            raise _Stop

    def end(*_: object) -> None:
        nonlocal depth
        depth -= 1

    def entity(*_: object) -> None:
        raise _Stop

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.EntityDeclHandler = entity
    with contextlib.suppress(_Stop, expat.ExpatError):
        parser.Parse(body, True)
    return deepest
