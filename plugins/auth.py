"""Radicale authentication over the agent table.

Passwords are stored as argon2 hashes, which are deliberately slow (tens of
milliseconds).  CalDAV clients send Basic credentials on every request, so a
successful verification is remembered per process, keyed by the stored hash:
changing or resetting the password changes the key, so the old password stops
working at once.  What is remembered is an HMAC of the password under a random
per-process key, never the password.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading

from radicale import auth
from radicale import config as radicale_config

from storage import agents
from storage.database import Database

_MAX_REMEMBERED = 10_000


class Auth(auth.BaseAuth):
    def __init__(self, configuration: radicale_config.Configuration, db: Database) -> None:
        super().__init__(configuration)
        self._db = db
        self._key = secrets.token_bytes(32)
        self._verified: dict[tuple[str, str], bytes] = {}
        self._mutex = threading.Lock()
        self._stripes = [threading.Lock() for _ in range(16)]

    def _digest(self, password: str) -> bytes:
        return hmac.new(self._key, password.encode(), hashlib.sha256).digest()

    def _login(self, login: str, password: str) -> str:
        with self._db.connection() as conn:
            stored = agents.password_hash(conn, login)
        if not stored:
            return ""
        key, digest = (login, stored), self._digest(password)
        if self._remembered(key, digest):
            return login
        # Clients open several connections at once: the first request of a
        # login verifies, the others wait for it and find it remembered.
        with self._stripes[hash(login) % len(self._stripes)]:
            if self._remembered(key, digest):
                return login
            if not agents.verify_password(stored, password):
                return ""
            with self._mutex:
                if len(self._verified) >= _MAX_REMEMBERED:
                    self._verified.clear()
                self._verified[key] = digest
        return login

    def _remembered(self, key: tuple[str, str], digest: bytes) -> bool:
        remembered = self._verified.get(key)
        return remembered is not None and hmac.compare_digest(remembered, digest)
