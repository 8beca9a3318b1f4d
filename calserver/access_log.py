"""One access line per request: method, route template, status, duration.

The template (``/feeds/{token}.ics``, ``/api/v1/agents/{agent}/rdvs/{uid}``,
``/dav/{tail}``), never the raw path: a feed's path is its credential, and a
CalDAV or API path carries the UID a client chose, which may hold a name.
Nothing of the query string, the headers or the body is logged.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Awaitable, Callable

from aiohttp import web

log = logging.getLogger("calserver.access")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def route_template(request: web.Request) -> str:
    """The request's route as declared (``/feeds/{token}.ics``), for logs."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "(no route)"


def log_failure(logger: logging.Logger, what: str, request: web.Request, error: Exception) -> None:
    """An unexpected failure of a request: its route, the exception's type and
    where it was raised; never its message, which may quote request data."""
    frame = traceback.extract_tb(error.__traceback__)[-1]
    logger.error(
        "%s %s %s failed: %s at %s:%s",
        what,
        request.method,
        route_template(request),
        type(error).__name__,
        frame.filename,
        frame.lineno,
    )


@web.middleware
async def access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as e:
        status = e.status
        raise
    finally:
        elapsed = (time.perf_counter() - started) * 1000
        log.info("%s %s %s %.1fms", request.method, route_template(request), status, elapsed)
