"""Keep calendar content out of Radicale's log lines.

Radicale logs parse and filter failures with the exception's message and
traceback, and vobject's messages quote the offending line, which may be an
ATTENDEE with a usager's name and email.  This filter keeps the log line and
the exception's type, and drops the rest.
"""

from __future__ import annotations

import logging


class RedactExceptions(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info or record.exc_text:
            record.exc_info = None
            record.exc_text = None
            record.stack_info = None
        if isinstance(record.args, tuple):
            record.args = tuple(
                f"<{type(a).__name__}>" if isinstance(a, BaseException) else a for a in record.args
            )
        return True


def install(logger_name: str = "radicale") -> None:
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactExceptions) for f in logger.filters):
        logger.addFilter(RedactExceptions())
