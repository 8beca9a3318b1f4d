"""Keep every character of a text value that vobject parses.

Radicale stores what vobject re-serialises, not the client's bytes, and
vobject reads a TEXT value as a comma-separated list and keeps only its first
element: ``SUMMARY:Suivi PMI, vaccins`` (an unescaped comma, which RFC 5545
wants escaped but which clients write all the time) came back ``Suivi PMI``.
Properties vobject does not know (ours, ``X-CALSERVER-MOTIF:1,2,3``, and
every other ``X-`` or newer IANA property) went through the same cut.

Installed once per process by ``install()``:

- a TEXT value is unescaped whole (``\\,`` ``\\;`` ``\\n`` ``\\\\``), a bare comma
  staying a comma; it is written back correctly escaped (``Suivi PMI\\, vaccins``);
- a property vobject has no behaviour for keeps its value exactly as the
  client wrote it, as vobject already does for ATTENDEE or URL: its type is
  unknown, so neither unescaping nor escaping is right for it.
"""

from __future__ import annotations

import base64
from typing import Any

from vobject.icalendar import TextBehavior, VCalendarComponentBehavior, stringToTextValues


def _decode_whole(cls: type[TextBehavior], line: Any) -> None:
    if not line.encoded:
        return
    encoding = getattr(line, "encoding_param", None)
    if encoding and encoding.upper() == cls.base64string:
        line.value = base64.b64decode(line.value)
    else:
        # No list separator: the value is one text, commas included.
        line.value = stringToTextValues(line.value, listSeparator=None)[0]
    line.encoded = False


def install() -> None:
    if TextBehavior.decode.__func__ is not _decode_whole:
        TextBehavior.decode = classmethod(_decode_whole)
    VCalendarComponentBehavior.defaultBehavior = None
