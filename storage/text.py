"""Which text the database can hold: one rule, checked where input arrives.

PostgreSQL's ``text`` cannot hold U+0000 (psycopg raises "A string literal
cannot contain NUL characters", which ended as a 500), and neither database
can encode a lone surrogate as UTF-8.  The other C0 controls and DEL are
refused with them: no name, note, path or iCalendar value needs them (RFC 5545
forbids them in calendar data), and they would reach feeds and logs as they
are.  Tab, line feed and carriage return are ordinary text.
"""

from __future__ import annotations

import re
import unicodedata

_WORD_BREAK = re.compile(r"[\s\-'’]+")
_UNSTORABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def unstorable(text: str) -> str | None:
    """Name the first character the database must not receive, or None."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    code = ord(found.group())
    kind = "a lone surrogate" if code >= 0xD800 else "a control character"
    return f"{kind} (U+{code:04X}) at position {found.start()}"


def folded(text: str) -> str:
    """Lower case without accents or other marks ("Élodie" -> "elodie"), for
    comparing names as a person types them."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def name_key(*names: str) -> str:
    """The words of a person's names, folded, each after a space
    (" dupont marie"): ``LIKE '% du%'`` then finds every name with a word
    starting with "du" (hyphens and apostrophes split words too)."""
    words = _WORD_BREAK.split(folded(" ".join(names)))
    return "".join(f" {w}" for w in words if w)[:420]
