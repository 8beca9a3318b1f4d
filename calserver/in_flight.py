"""How many requests the server is answering right now.

Background work that runs in the server's process and is not urgent (the
notifier's messages) waits for a gap between requests, for a bounded time:
a burst of bookings is then not slowed by the messages of its first ones,
and under a load without gaps the work still goes once its wait is over.
A gap is ``QUIET_S`` without any request: the instant between two requests
of one client is not one.  The count is kept on the event loop; other
threads only read it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
QUIET_S = 0.05


class InFlight:
    def __init__(self) -> None:
        self._answering = 0
        self._last_end = 0.0

    def busy(self) -> bool:
        """A request is being answered, or one ended less than ``QUIET_S`` ago."""
        return self._answering > 0 or time.monotonic() - self._last_end < QUIET_S

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self._answering += 1
        try:
            return await handler(request)
        finally:
            self._answering -= 1
            self._last_end = time.monotonic()
