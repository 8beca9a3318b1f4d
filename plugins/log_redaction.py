"""Keep calendar content out of the log.

Radicale logs parse and filter failures with the exception's message and
traceback, and vobject's messages quote the offending line, which may be an
ATTENDEE with a usager's name and email; aiohttp logs a request it cannot
parse with the start of the offending header (an oversized Authorization is
base64 of a password).  This filter keeps the log line and the exception's
type, and drops the rest.  Radicale's own lines name the request's path, whose
last segment is the href a client chose (often the event's UID, which may hold
a name): only the collection is kept.  It sits on the root logger's handlers, so records
of every logger (Radicale's, aiohttp's, vobject's on the root logger) pass it.
"""

from __future__ import annotations

import logging


class RedactExceptions(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, BaseException):
            # vobject logs an exception itself (logging.error(e)); an unknown
            # time zone's says the client's TZID.
            record.msg, record.args = f"<{type(record.msg).__name__}>", ()
        if record.exc_info or record.exc_text:
            record.exc_info = None
            record.exc_text = None
            record.stack_info = None
        if isinstance(record.args, tuple):
            radicale = record.name.startswith("radicale")
            record.args = tuple(_redacted(a, radicale) for a in record.args)
        return True


def _redacted(arg: object, radicale: bool) -> object:
    if isinstance(arg, BaseException):
        return f"<{type(arg).__name__}>"
    if radicale and isinstance(arg, str) and arg.startswith("/") and arg.count("/") >= 3:
        collection, _, item = arg.rstrip("/").rpartition("/")
        return f"{collection}/…" if item and not arg.endswith("/") else arg
    return arg


def install() -> None:
    """On the root logger's handlers (every record that gets written passes
    one) and on Radicale's logger (for a handler added later)."""
    targets: list[logging.Filterer] = [logging.getLogger("radicale")]
    targets += logging.getLogger().handlers
    for target in targets:
        if not any(isinstance(f, RedactExceptions) for f in target.filters):
            target.addFilter(RedactExceptions())
