"""How many requests the server is answering right now.

Background work that runs in the server's process and is not urgent (the
notifier's messages) waits for a gap between requests, for a bounded time:
a burst of bookings is then not slowed by the messages of its first ones,
and under a load without gaps the work still goes once its wait is over.
The count is kept on the event loop; other threads only read it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class InFlight:
    def __init__(self) -> None:
        self._answering = 0

    def busy(self) -> bool:
        return self._answering > 0

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self._answering += 1
        try:
            return await handler(request)
        finally:
            self._answering -= 1
