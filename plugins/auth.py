"""Radicale authentication over the agent table.

Passwords are stored as argon2 hashes, which are deliberately slow (tens of
milliseconds).  CalDAV clients send Basic credentials on every request, so a
successful verification is remembered per process, with the stored hash it
was checked against: changing or resetting the password changes that hash, so
the old password stops working at once.  What is remembered is an HMAC of the
password under a random per-process key, never the password.

``known`` answers from memory alone, without the database: the gate in front
of the worker threads (``calserver.auth_gate``) uses it to let remembered
credentials past the throttle and the verification queue, and the request then
confirms them here against the stored hash.  An unknown login is verified
against a dummy hash, so it costs what a wrong password costs.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading

from radicale import auth, types
from radicale import config as radicale_config

from plugins.credentials import MalformedCredentials, WrongCredentials, parse_basic
from storage import agents
from storage.database import Database

_MAX_REMEMBERED = 10_000


class Auth(auth.BaseAuth):
    def __init__(self, configuration: radicale_config.Configuration, db: Database) -> None:
        super().__init__(configuration)
        self._db = db
        self._key = secrets.token_bytes(32)
        # login -> (the stored hash it was verified against, HMAC of the password)
        self._verified: dict[str, tuple[str, bytes]] = {}
        self._mutex = threading.Lock()
        self._stripes = [threading.Lock() for _ in range(16)]

    def get_external_login(self, environ: types.WSGIEnviron) -> tuple[()] | tuple[str, str]:
        """The Basic credentials, read by ``plugins.credentials`` rather than by
        Radicale; () without any (Radicale then answers 401 with a challenge).
        ``Application`` answers unreadable ones before Radicale reads them."""
        try:
            return parse_basic(environ.get("HTTP_AUTHORIZATION")) or ()
        except MalformedCredentials:
            return ()

    def known(self, login: str, password: str) -> bool:
        """Whether this password of ``login`` was verified in this process (it
        may have been changed since: ``verify`` has the last word)."""
        remembered = self._verified.get(login)
        return remembered is not None and hmac.compare_digest(remembered[1], self._digest(password))

    def verify(self, login: str, password: str) -> bool:
        with self._db.connection() as conn:
            stored = agents.password_hash(conn, login)
        digest = self._digest(password)
        if self._remembered(login, stored, digest):
            return True
        # Clients open several connections at once: the first request of a
        # login verifies, the others wait for it and find it remembered.
        with self._stripes[hash(login) % len(self._stripes)]:
            if self._remembered(login, stored, digest):
                return True
            if not agents.verify_password(stored, password):
                self._forget_if_remembered(login, digest)
                return False
            assert stored is not None  # verify_password refuses a missing hash
            with self._mutex:
                if len(self._verified) >= _MAX_REMEMBERED:
                    self._verified.clear()
                self._verified[login] = (stored, digest)
        return True

    def _login(self, login: str, password: str) -> str:
        """Raises rather than answering "": Radicale answers a failed login
        that came through ``get_external_login`` with 403, not 401."""
        if not self.verify(login, password):
            raise WrongCredentials()
        return login

    def _forget_if_remembered(self, login: str, digest: bytes) -> None:
        """Forget a password that no longer verifies (it was changed), so that
        ``known`` stops vouching for it; other wrong passwords, an attacker's,
        leave the owner's entry alone."""
        with self._mutex:
            remembered = self._verified.get(login)
            if remembered is not None and hmac.compare_digest(remembered[1], digest):
                del self._verified[login]

    def _digest(self, password: str) -> bytes:
        return hmac.new(self._key, password.encode(), hashlib.sha256).digest()

    def _remembered(self, login: str, stored: str | None, digest: bytes) -> bool:
        remembered = self._verified.get(login)
        return (
            stored is not None
            and remembered is not None
            and remembered[0] == stored
            and hmac.compare_digest(remembered[1], digest)
        )
