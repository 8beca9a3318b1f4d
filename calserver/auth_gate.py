"""Credentials are checked here, on the event loop, before a request takes a
worker thread: CalDAV and the API share this one gate, its throttle and its
verification queue.

Why in front of the threads: a wrong password costs a full argon2 hash, and
Radicale used to spend its CalDAV threads on them (and on its own sleep after
each failure), so sixteen clients guessing passwords made a logged-in agent
wait seconds.  Here:

- unreadable credentials are a 401 at once;
- credentials this process has already verified (``Auth.known``) go straight
  on, past the throttle and the queue, so a flood cannot starve them;
- others face the throttle (429 with Retry-After, ``plugins.auth_throttle``),
  then the verification queue: ``verifications`` hashes at once in their own
  threads, at most ``waiting`` more waiting (on the event loop, holding no
  thread); beyond that a quick 503 with Retry-After;
- a wrong password, like an unknown login, is a 401 without reaching
  Radicale or the API handler.

The request then confirms the credentials in its own thread (``Auth.login``),
from the success cache; a password changed in between is refused there.
"""

from __future__ import annotations

import asyncio
import logging
import math

from aiohttp import web

from calserver.background import background_pool
from calserver.wsgi_bridge import Guard
from plugins.auth import Auth
from plugins.auth_throttle import Throttle
from plugins.credentials import MalformedCredentials, WrongCredentials, parse_basic

log = logging.getLogger("calserver.auth")


class AuthRefused(Exception):
    """Credentials refused before any handler runs, with the answer's status."""

    def __init__(
        self, status: int, code: str, message: str, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.retry_after = retry_after

    def headers(self, realm: str) -> dict[str, str]:
        if self.retry_after is not None:
            return {"Retry-After": str(self.retry_after)}
        return {"WWW-Authenticate": f'Basic realm="{realm}", charset="UTF-8"'}


class AuthGate:
    def __init__(
        self,
        auth: Auth,
        throttle: Throttle,
        *,
        verifications: int = 2,
        waiting: int = 8,
        busy_pause: float = 1.0,
    ) -> None:
        self.auth = auth
        self.throttle = throttle
        self._executor = background_pool(verifications, "verify")
        self._capacity = verifications + waiting
        self._in_flight = 0
        self._busy_pause = busy_pause

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def check(self, header: str | None, address: str) -> tuple[str, str] | None:
        """The credentials of a request if they may go on, None without any;
        raises ``AuthRefused``."""
        try:
            credentials = parse_basic(header)
        except MalformedCredentials:
            raise AuthRefused(401, "unauthenticated", "malformed credentials") from None
        if credentials is None:
            return None
        await self.check_pair(*credentials, address)
        return credentials

    async def check_pair(self, login: str, password: str, address: str) -> None:
        """Let a login and password go on (a Basic header's, or a login form's:
        the back office), or raise ``AuthRefused``: the same throttle, queue
        and verification whichever way they came."""
        if self.auth.known(login, password):
            return
        wait = self.throttle.retry_after(login, address)
        if wait > 0:
            log.warning("Login throttled from %s", address)
            raise AuthRefused(
                429,
                "too-many-failures",
                "too many wrong passwords from this address; try again later",
                retry_after=math.ceil(wait),
            )
        delay = self.throttle.login_delay(login)
        if delay > 0:
            await asyncio.sleep(delay)
        if self._in_flight >= self._capacity:
            # Held a moment before the answer (on the event loop, holding no
            # thread): a client looping on 503 would otherwise ask a thousand
            # times a second, and answering costs the loop what the known
            # clients' requests need.
            await asyncio.sleep(self._busy_pause)
            raise AuthRefused(
                503, "busy", "too many logins at once; try again shortly", retry_after=1
            )
        self._in_flight += 1
        try:
            loop = asyncio.get_running_loop()
            right = await loop.run_in_executor(self._executor, self.auth.verify, login, password)
        finally:
            self._in_flight -= 1
        if not right:
            # The address only: what was typed as a login may be a password
            # or a person's name.
            log.warning("Failed login attempt from %s", address)
            self.throttle.failed(login, address)
            raise AuthRefused(401, "unauthenticated", str(WrongCredentials()))
        self.throttle.succeeded(login, address)

    def caldav_guard(self, realm: str) -> Guard:
        """The CalDAV bridge's check before a request takes a thread: None to
        go on, else the plain-text answer Radicale would give."""

        async def guard(request: web.Request) -> web.Response | None:
            try:
                await self.check(request.headers.get("Authorization"), request.remote or "")
            except AuthRefused as refused:
                return web.Response(
                    status=refused.status,
                    text=f"{refused.message}\n",
                    headers=refused.headers(realm),
                )
            return None

        return guard
