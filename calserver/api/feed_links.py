"""The agent's feed through the API: its URLs (https, webcal, Google
Calendar's subscribe link), rotation, and whether it carries availability.

Only the agent and the admins of its organisations see or change these: the
URL is a secret that shows the agent's RDVs to whoever holds it.
"""

from __future__ import annotations

import secrets
from urllib.parse import quote

from aiohttp import web
from sqlalchemy import Connection

from calserver.api import schemas
from calserver.api.base import (
    ApiContext,
    body,
    context,
    forbidden,
    int_param,
    json,
    login_of,
    not_found,
)
from storage import feeds, scheduling

# 256 random bits, URL-safe, nothing derived from the agent.
TOKEN_BYTES = 32


def _allowed(conn: Connection, login: str, agent_id: int) -> dict:
    agent = scheduling.agent(conn, agent_id)
    me = scheduling.agent_by_login(conn, login)
    if agent is None or me is None:
        raise not_found("this agent")
    if me["id"] != agent_id:
        mine = scheduling.roles_of(conn, me["id"])
        theirs = scheduling.roles_of(conn, agent_id)
        if not any(mine.get(org) == "admin" for org in theirs):
            raise forbidden("only the agent and its admins see its feed")
    return agent


def _token(conn: Connection, agent_id: int, *, rotate: bool = False) -> str:
    """The agent's feed token; a new one when rotating or first asked."""
    token = None if rotate else feeds.token_of(conn, agent_id)
    if token is None:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        feeds.set_token(conn, agent_id, token)
    return token


def _links(request: web.Request, ctx: ApiContext, token: str, with_availability: bool) -> dict:
    base = ctx.public_url or f"{request.scheme}://{request.host}"
    https = f"{base}/feeds/{token}.ics"
    webcal = "webcal://" + https.split("://", 1)[1]
    return {
        "https": https,
        "webcal": webcal,
        "google": "https://calendar.google.com/calendar/r?cid=" + quote(webcal, safe=""),
        "with_availability": with_availability,
    }


async def get_feed(request: web.Request) -> web.Response:
    login, agent_id = await login_of(request), int_param(request, "agent")
    ctx = context(request)

    def write(conn: Connection) -> tuple[str, bool]:
        agent = _allowed(conn, login, agent_id)
        return _token(conn, agent_id), bool(agent["feed_with_availability"])

    token, with_availability = await ctx.run(ctx.write, write)
    return json(_links(request, ctx, token, with_availability))


async def rotate_feed(request: web.Request) -> web.Response:
    login, agent_id = await login_of(request), int_param(request, "agent")
    ctx = context(request)

    def write(conn: Connection) -> tuple[str, bool]:
        agent = _allowed(conn, login, agent_id)
        return _token(conn, agent_id, rotate=True), bool(agent["feed_with_availability"])

    token, with_availability = await ctx.run(ctx.write, write)
    return json(_links(request, ctx, token, with_availability))


async def patch_feed(request: web.Request) -> web.Response:
    login, agent_id = await login_of(request), int_param(request, "agent")
    change = await body(request, schemas.FeedPatch)
    ctx = context(request)

    def write(conn: Connection) -> tuple[str, bool]:
        _allowed(conn, login, agent_id)
        scheduling.set_agent_settings(
            conn, agent_id, {"feed_with_availability": change.with_availability}
        )
        return _token(conn, agent_id), change.with_availability

    token, with_availability = await ctx.run(ctx.write, write)
    return json(_links(request, ctx, token, with_availability))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/agents/{agent}/feed", get_feed)
    app.router.add_patch("/agents/{agent}/feed", patch_feed)
    app.router.add_post("/agents/{agent}/feed/rotate", rotate_feed)
