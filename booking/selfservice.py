"""What the "Infos et annulation" link asks before it shows an RDV: the first
three letters of the usager's last name (domain.md, Usager notifications).

Compared case-insensitively, spaces, hyphens, apostrophes and accents
ignored: « Le Hénaff » is ``leh``, and a usager typing ``LEH``, ``le h`` or
``léh`` gets in.  A name shorter than three letters asks for all of it.
"""

from __future__ import annotations

import unicodedata

LETTERS = 3
_IGNORED = frozenset("-'’.")
# Ligatures Unicode does not decompose (« Œuvray » is typed ``oeu``).
_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae"})


def _letters(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold().translate(_LIGATURES))
    return "".join(
        c
        for c in decomposed
        if not unicodedata.combining(c) and c not in _IGNORED and not c.isspace()
    )


def name_letters(last_name: str) -> str:
    """The letters a usager must type for this last name."""
    return _letters(last_name)[:LETTERS]


def letters_match(last_name: str, typed: str) -> bool:
    """Whether ``typed`` is the start of ``last_name`` the link asks for."""
    expected = name_letters(last_name)
    return bool(expected) and _letters(typed) == expected
