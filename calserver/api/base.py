"""What every API handler shares: authentication (the gate and Auth object of
the CalDAV side, so a login and its throttle are the same on both), rights,
blocking work off the event loop, and errors as JSON a person can read.

Errors: ``{"error": {"code": "...", "message": "..."}}`` with 400 (unreadable
body, a control character in the URL), 401 (no, malformed or wrong
credentials, with a Basic challenge), 403 (no right), 404 (nothing visible
there, or no such path), 405 (no such method here, with Allow), 409 (slot
taken; a unique value another record has, with its ``existing_id``), 413
(body too large), 415 (a body that is not JSON), 422 (a value or a booking
rule refuses; text with control characters), 429 (too many wrong passwords,
with Retry-After), 503 (a search ran out of its time budget; too many logins
being verified, with Retry-After).  Unexpected failures answer 500 with no detail;
the log names the exception type only, never request data.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import msgspec
from aiohttp import web
from radicale.auth import AuthContext
from sqlalchemy import Connection

from booking.rules import BookingRefused, Why
from calserver.access_log import log_failure
from calserver.auth_gate import AuthGate, AuthRefused
from calserver.blocking import Transactions
from plugins.credentials import WrongCredentials
from plugins.rights import Rights
from storage import scheduling
from storage.database import Database
from storage.text import unstorable

log = logging.getLogger("calserver.api")
T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CONTEXT = web.AppKey("api_context", "ApiContext")
# Ids are 32-bit in the database; instants are kept where every library works.
MAX_ID = 2**31 - 1
MIN_MOMENT = datetime(1970, 1, 2, tzinfo=UTC)
MAX_MOMENT = datetime(9000, 1, 1, tzinfo=UTC)
# The largest body the API reads.  aiohttp applies the main application's
# client_max_size (CalDAV's, 1 MiB) to every request, a sub-application's
# own is never consulted: the API checks its bodies itself.
MAX_BODY = 64 * 1024


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def not_found(what: str) -> ApiError:
    return ApiError(404, "not-found", f"{what} does not exist or is not visible to you")


def forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


@dataclass
class ApiContext(Transactions):
    db: Database
    gate: AuthGate
    rights: Rights
    realm: str
    executor: ThreadPoolExecutor
    base_url: str  # where links point (Settings.base_url)

    def agenda_rights(self, login: str, owner: str, agenda: str) -> str:
        """What ``login`` may do with the items of ``owner``'s agenda, exactly
        as over CalDAV ("r" read, "w" write)."""
        return self.rights.authorization(login, set(), f"/{owner}/{agenda}/")


def context(request: web.Request) -> ApiContext:
    return request.app[CONTEXT]


REFUSAL_STATUS = {Why.RULE: 422, Why.MISSING: 404, Why.TAKEN: 409, Why.OVERLOADED: 503}


def _error(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    **more: Any,
) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message, **more}}, status=status, headers=headers
    )


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        routing = request.match_info.http_exception
        if routing is not None:
            raise routing  # unknown path (404) or method (405): JSON as well
        _check_url(request)
        _check_body(request)
        return await handler(request)
    except AuthRefused as e:
        return _error(e.status, e.code, e.message, e.headers(context(request).realm))
    except ApiError as e:
        headers = None
        if e.status == 401:
            headers = {
                "WWW-Authenticate": f'Basic realm="{context(request).realm}", charset="UTF-8"'
            }
        return _error(e.status, e.code, e.message, headers)
    except BookingRefused as e:
        return _error(REFUSAL_STATUS[e.why], e.code, e.message)
    except scheduling.Duplicate as e:
        return _error(409, "exists", str(e), existing_id=e.existing_id)
    except msgspec.ValidationError as e:
        return _error(422, "invalid-value", str(e))
    except msgspec.DecodeError:
        return _error(400, "invalid-json", "the request body is not valid JSON")
    except web.HTTPRequestEntityTooLarge:
        return _error(413, "too-large", f"the request body is over {MAX_BODY // 1024} KiB")
    except web.HTTPMethodNotAllowed as e:
        allowed = ", ".join(sorted(e.allowed_methods))
        message = f"{request.method} is not a method of this path; it has {allowed}"
        return _error(405, "method-not-allowed", message, {"Allow": allowed})
    except web.HTTPNotFound:
        return _error(
            404, "not-found", "there is no such path in the API (see /api/v1/openapi.json)"
        )
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return _error(e.status, e.reason.lower().replace(" ", "-"), e.reason)
    except Exception as e:
        log_failure(log, "API request", request, e)
        return _error(
            500, "internal-error", "something went wrong on our side; nothing was changed"
        )


def _check_body(request: web.Request) -> None:
    """A body is JSON of at most MAX_BODY bytes, or nothing: 415 or 413
    before any handler reads or writes."""
    if not request.body_exists:
        return
    if (request.content_length or 0) > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(MAX_BODY, request.content_length or 0)
    kind = request.content_type if "Content-Type" in request.headers else ""
    json_type = kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )
    charset = (request.charset or "utf-8").lower()
    if not json_type or charset not in ("utf-8", "utf8"):
        raise ApiError(
            415,
            "unsupported-media-type",
            "send the body as JSON: Content-Type application/json, in UTF-8",
        )


def _check_url(request: web.Request) -> None:
    """Path and query parameters reach SQL as text: refuse what it cannot hold."""
    for name, value in (*request.match_info.items(), *request.query.items()):
        problem = unstorable(value)
        if problem is not None:
            raise ApiError(400, "invalid-url", f"the URL parameter {name!r} contains {problem}")


async def login_of(request: web.Request) -> str:
    """The authenticated agent's login (HTTP Basic, the CalDAV credentials)."""
    ctx = context(request)
    address = request.remote or ""
    credentials = await ctx.gate.check(request.headers.get("Authorization"), address)
    if credentials is None:
        raise ApiError(401, "unauthenticated", "log in with your agent login and password")
    auth_context = AuthContext()
    auth_context.remote_addr = address
    try:
        user, _, _ = await ctx.run(ctx.gate.auth.login, *credentials, auth_context)
    except WrongCredentials as e:  # changed since the gate let them through
        raise ApiError(401, "unauthenticated", str(e)) from None
    return user


async def body(request: web.Request, kind: type[T]) -> T:
    """The request body decoded as ``kind``; text the database cannot hold
    (NUL, control characters) is a 422 naming the field."""
    raw = await request.read()
    if len(raw) > MAX_BODY:  # sent without a Content-Length
        raise web.HTTPRequestEntityTooLarge(MAX_BODY, len(raw))
    value = msgspec.json.decode(raw, type=kind)
    for field, text in _texts(value, ""):
        problem = unstorable(text)
        if problem is not None:
            raise ApiError(422, "invalid-text", f"{field or 'the body'!r} contains {problem}")
    return value


def _texts(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """Every string in a decoded body, with where it is (``services[1]``)."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, msgspec.Struct):
        for name in value.__struct_fields__:
            yield from _texts(getattr(value, name), f"{where}.{name}" if where else name)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _texts(item, f"{where}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _texts(key, where)
            yield from _texts(item, f"{where}[{key!r}]")


def json(value: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(value), status=status, content_type="application/json"
    )


def int_param(request: web.Request, name: str, *, required: bool = True) -> int | None:
    raw = request.match_info.get(name) or request.query.get(name)
    if raw is None or raw == "":
        if required:
            raise ApiError(422, "missing-parameter", f"the parameter {name!r} is required")
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_ID:
        raise ApiError(422, "invalid-parameter", f"{name!r} must be an id, not {raw[:40]!r}")
    return int(raw)


def parse_moment(raw: str, zone: str, name: str, *, end_of_day: bool = False) -> datetime:
    """A date (the day's start, or the next day's start for an end) or a
    datetime; without an offset it is the organisation's local time."""
    tz = ZoneInfo(zone)
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            moment = datetime.combine(day, time(), tz)
            if end_of_day:
                moment = datetime.combine(date.fromordinal(day.toordinal() + 1), time(), tz)
            moment = moment.astimezone(UTC)
            if not MIN_MOMENT <= moment <= MAX_MOMENT:
                raise OverflowError(raw)
            return moment
        value = datetime.fromisoformat(raw)
        if value.tzinfo is None:
            value = value.replace(tzinfo=tz)
        moment = value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ApiError(
            422, "invalid-parameter", f"{name!r} must be a date or an ISO 8601 datetime"
        ) from None
    if not MIN_MOMENT <= moment <= MAX_MOMENT:
        raise ApiError(422, "invalid-parameter", f"{name!r} must lie between 1970 and 9000")
    return moment


def local_iso(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).isoformat()


def utc_iso(seconds: float | None) -> str | None:
    """A stored POSIX time (seconds) as ISO 8601 in UTC, the form of every
    record timestamp the API answers."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def utc_iso_ms(milliseconds: int | None) -> str | None:
    """A stored time in milliseconds as ISO 8601 in UTC, to the millisecond."""
    if milliseconds is None:
        return None
    return datetime.fromtimestamp(milliseconds / 1000, UTC).isoformat(timespec="milliseconds")


# -- memberships -----------------------------------------------------------


def role_in(conn: Connection, login: str, organisation_id: int) -> tuple[int, str]:
    """(agent id, role) of the logged-in agent in the organisation, or 404."""
    agent = scheduling.agent_by_login(conn, login)
    if agent is None:
        raise not_found("this organisation")
    role = scheduling.roles_of(conn, agent["id"]).get(organisation_id)
    if role is None or role == "intervenant":
        raise not_found("this organisation")
    return agent["id"], role


def require_self_or_admin(
    conn: Connection, login: str, organisation_id: int, agent_id: int, what: str
) -> None:
    """The logged-in agent is ``agent_id`` or an admin of the organisation,
    and that agent is one of the organisation's (else 404, or 403 ``what``)."""
    me_id, role = role_in(conn, login, organisation_id)
    if organisation_id not in scheduling.roles_of(conn, agent_id):
        raise not_found("this agent")
    if agent_id != me_id and role != "admin":
        raise ApiError(403, "forbidden", f"only admins {what}")


def require_admin(conn: Connection, login: str, organisation_id: int) -> int:
    agent_id, role = role_in(conn, login, organisation_id)
    if role != "admin":
        raise forbidden("only an admin of the organisation may change this")
    return agent_id
