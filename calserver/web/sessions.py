"""The pages' session: a signed cookie, and the CSRF token bound to it.

The cookie holds a random session id, when it was made and a few values the
pages keep between requests (ids of records, never personal data), as JSON
signed with an HMAC under the server's key (``storage.server_keys``): the
server stores nothing per visitor, and any of its processes reads any cookie.
It is ``HttpOnly``, ``SameSite=Lax`` and, when the public URL is https,
``Secure``; it lives as long as the browser session, at most ``MAX_AGE``.

CSRF: every form carries ``csrf``, an HMAC of the session id; every POST
whose token is missing or not this session's is refused (403) before its
handler runs.  A forged form from another site cannot know the token, and
``SameSite=Lax`` keeps the cookie off its cross-site POSTs anyway.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

COOKIE = "calserver_session"
MAX_AGE = 12 * 3600
CSRF_FIELD = "csrf"
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class CookiePolicy:
    key: bytes
    secure: bool  # the public URL is https


POLICY = web.AppKey("session_policy", CookiePolicy)


@dataclass
class Session:
    id: str
    made: int
    values: dict[str, Any] = field(default_factory=dict)
    changed: bool = False

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)

    def __setitem__(self, name: str, value: Any) -> None:
        self.values[name] = value
        self.changed = True

    def pop(self, name: str) -> Any:
        self.changed = self.changed or name in self.values
        return self.values.pop(name, None)


SESSION = web.RequestKey("session", Session)


def _sign(key: bytes, payload: bytes) -> str:
    return hmac.new(key, payload, hashlib.sha256).hexdigest()


def _encode(key: bytes, session: Session) -> str:
    payload = base64.urlsafe_b64encode(
        json.dumps({"i": session.id, "t": session.made, "v": session.values}).encode()
    )
    return f"{payload.decode()}.{_sign(key, payload)}"


def _decode(key: bytes, raw: str, now: float) -> Session | None:
    payload, _, signature = raw.rpartition(".")
    if not payload or not hmac.compare_digest(_sign(key, payload.encode()), signature):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(payload.encode()))
        session = Session(str(data["i"]), int(data["t"]), dict(data["v"]))
    except (ValueError, KeyError, TypeError):
        return None
    return session if 0 <= now - session.made <= MAX_AGE else None


def session_of(request: web.Request) -> Session:
    """This request's session (made on first use; sent back with the answer)."""
    found = request.get(SESSION)
    if found is None:
        policy = request.app[POLICY]
        raw = request.cookies.get(COOKIE)
        found = _decode(policy.key, raw, time.time()) if raw else None
        if found is None:
            found = _new_session({})
        request[SESSION] = found
    return found


def _new_session(values: dict[str, Any]) -> Session:
    return Session(secrets.token_urlsafe(16), int(time.time()), values, changed=True)


def restart_session(request: web.Request, values: dict[str, Any]) -> None:
    """Replace this request's session by a new one holding ``values`` (a
    login or logout: an id planted before it opens nothing after it)."""
    request[SESSION] = _new_session(values)


def csrf_token(request: web.Request) -> str:
    session = session_of(request)
    return _sign(request.app[POLICY].key, f"csrf:{session.id}".encode())[:40]


def session_digest(request: web.Request, purpose: str) -> str:
    """A value naming this browser session for ``purpose``, to keep in the
    database (a booking request remembers who asked) without the id itself."""
    session = session_of(request)
    return _sign(request.app[POLICY].key, f"{purpose}:{session.id}".encode())


def keyed_digest(request: web.Request, text: str) -> str:
    """An HMAC of ``text`` under the server's key: what the database keeps of
    a short secret (a 6-digit code) so that its table alone does not give it."""
    return _sign(request.app[POLICY].key, text.encode())


@web.middleware
async def sessions(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a POST without this session's CSRF token; send the session back."""
    if request.method in _UNSAFE:
        try:
            form = await request.post()
        except ValueError:  # a body that is no form
            raise web.HTTPBadRequest() from None
        sent = form.get(CSRF_FIELD)
        had_cookie = COOKIE in request.cookies
        if (
            not isinstance(sent, str)
            or not had_cookie
            or not hmac.compare_digest(sent, csrf_token(request))
        ):
            raise web.HTTPForbidden(reason="csrf")
    try:
        response = await handler(request)
    except web.HTTPException as e:  # a redirect: it carries the session too
        if e.status < 400:
            send_session(request, e)
        raise
    send_session(request, response)
    return response


def send_session(request: web.Request, response: web.StreamResponse) -> None:
    """Set the cookie when the session is new or changed (error pages too:
    their forms need the token)."""
    session = request.get(SESSION)
    if session is None or not session.changed or response.prepared:
        return
    policy = request.app[POLICY]
    response.set_cookie(
        COOKIE,
        _encode(policy.key, session),
        path="/",
        secure=policy.secure,
        httponly=True,
        samesite="Lax",
    )
