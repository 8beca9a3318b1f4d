"""Keep calendar content out of the log.

Radicale logs parse and filter failures with the exception's message and
traceback, and vobject's messages quote the offending line, which may be an
ATTENDEE with a usager's name and email; aiohttp logs a request it cannot
parse with the start of the offending header (an oversized Authorization is
base64 of a password).  This filter keeps the log line and the exception's
type, and drops the rest.  It sits on the root logger's handlers, so records
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
            record.args = tuple(
                f"<{type(a).__name__}>" if isinstance(a, BaseException) else a for a in record.args
            )
        return True


def install() -> None:
    """On the root logger's handlers (every record that gets written passes
    one) and on Radicale's logger (for a handler added later)."""
    targets: list[logging.Filterer] = [logging.getLogger("radicale")]
    targets += logging.getLogger().handlers
    for target in targets:
        if not any(isinstance(f, RedactExceptions) for f in target.filters):
            target.addFilter(RedactExceptions())
