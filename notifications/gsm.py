"""SMS text within the GSM 03.38 alphabet, and its length in segments.

A text with one character outside GSM-7 is sent as UCS-2, 70 characters a
segment instead of 160: a French accent outside the alphabet (ê, ç, î, ô...)
would cost twice.  So every character outside it is transliterated (ê -> e,
œ -> oe, typographic quotes -> plain ones) before sending, and the segments
are counted as the network counts them (a concatenated message carries 153
septets per segment; characters of the extension table take two, in one
segment).
"""

from __future__ import annotations

import unicodedata

BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
EXTENSION = "^{}\\[~]|€\f"
_ALPHABET = frozenset(BASIC) | frozenset(EXTENSION)
_SPECIAL = {
    "’": "'", "‘": "'", "‚": "'", "“": '"', "”": '"', "„": '"', "«": '"', "»": '"',
    "–": "-", "—": "-", "‐": "-", "…": "...", "œ": "oe", "Œ": "OE",
    "\u00a0": " ", "\u202f": " ", "\t": " ", "ç": "c", "•": "-", "°": "o",
}  # fmt: skip
SINGLE, MULTI = 160, 153


def transliterate(text: str) -> str:
    """The text with every character outside GSM-7 replaced by its nearest
    equivalent inside (an accent dropped), or "?" when there is none."""
    out = []
    for char in text:
        if char in _ALPHABET:
            out.append(char)
        elif char in _SPECIAL:
            out.append(_SPECIAL[char])
        else:
            base = "".join(
                c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
            )
            out.append(base if base and all(c in _ALPHABET for c in base) else "?")
    return "".join(out)


def septets(text: str) -> int:
    """Length in GSM-7 septets (an extension character takes two)."""
    return sum(2 if c in EXTENSION else 1 for c in text)


def segments(text: str) -> int:
    """How many SMS the (GSM-7) text is sent as.  Past one SMS, each segment
    carries 153 septets, and an extension character's two septets (escape and
    character) never straddle two segments: it starts the next one."""
    if septets(text) <= SINGLE:
        return 1
    count, used = 1, 0
    for char in text:
        size = 2 if char in EXTENSION else 1
        if used + size > MULTI:
            count, used = count + 1, 0
        used += size
    return count
