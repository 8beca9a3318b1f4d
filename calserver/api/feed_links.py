"""The agent's feed through the API: its URLs (https, webcal, Google
Calendar's subscribe link), rotation, and whether it carries availability.

Only the agent and the admins of its organisations see or change these: the
URL is a secret that shows the agent's RDVs to whoever holds it.  Only its
hash is stored, so the URL is shown once, when made (first ``GET``, or a
rotation); afterwards ``GET`` says how to rotate for a new one.
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


def self_or_admin(conn: Connection, login: str, agent_id: int, what: str = "its feed") -> dict:
    """The agent, when ``login`` is that agent or an admin of one of its
    organisations (404 for an unknown agent, 403 for anyone else)."""
    agent = scheduling.agent(conn, agent_id)
    me = scheduling.agent_by_login(conn, login)
    if agent is None or me is None:
        raise not_found("this agent")
    if me["id"] != agent_id:
        mine = scheduling.roles_of(conn, me["id"])
        theirs = scheduling.roles_of(conn, agent_id)
        if not any(mine.get(org) == "admin" for org in theirs):
            raise forbidden(f"only the agent and its admins see {what}")
    return agent


def _links(ctx: ApiContext, token: str) -> dict:
    https = f"{ctx.base_url}/feeds/{token}.ics"
    webcal = "webcal://" + https.split("://", 1)[1]
    return {
        "https": https,
        "webcal": webcal,
        "google": "https://calendar.google.com/calendar/r?cid=" + quote(webcal, safe=""),
    }


def _answer(request: web.Request, with_availability: bool, token: str | None) -> dict:
    """The feed's state; its URLs only with a token just made (only its hash
    is kept, so a URL cannot be shown twice)."""
    answer: dict = {
        "with_availability": with_availability,
        "rotate": request.path.removesuffix("/rotate") + "/rotate",
    }
    if token is None:
        answer["message"] = (
            "The feed's URL is shown only when it is made. To get a URL again, "
            "rotate it (POST to 'rotate'): the old URL then stops working."
        )
    return answer


def _made(request: web.Request, with_availability: bool, token: str) -> dict:
    return {**_answer(request, with_availability, token), **_links(context(request), token)}


def _new_token(conn: Connection, agent_id: int) -> str:
    if scheduling.is_intervenant(conn, agent_id):
        raise forbidden("an intervenant receives nothing: it has no feed")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    feeds.set_token(conn, agent_id, token)
    return token


async def get_feed(request: web.Request) -> web.Response:
    """The feed's URLs the first time (the feed is made then), afterwards its
    settings and how to get a new URL."""
    login, agent_id = await login_of(request), int_param(request, "agent")
    ctx = context(request)

    def write(conn: Connection) -> tuple[str | None, bool]:
        agent = self_or_admin(conn, login, agent_id)
        token = None if feeds.has_token(conn, agent_id) else _new_token(conn, agent_id)
        return token, bool(agent["feed_with_availability"])

    token, with_availability = await ctx.run(ctx.write, write)
    if token is None:
        return json(_answer(request, with_availability, None))
    return json(_made(request, with_availability, token))


async def rotate_feed(request: web.Request) -> web.Response:
    login, agent_id = await login_of(request), int_param(request, "agent")
    ctx = context(request)

    def write(conn: Connection) -> tuple[str, bool]:
        agent = self_or_admin(conn, login, agent_id)
        return _new_token(conn, agent_id), bool(agent["feed_with_availability"])

    token, with_availability = await ctx.run(ctx.write, write)
    return json(_made(request, with_availability, token))


async def patch_feed(request: web.Request) -> web.Response:
    login, agent_id = await login_of(request), int_param(request, "agent")
    change = await body(request, schemas.FeedPatch)
    ctx = context(request)

    def write(conn: Connection) -> None:
        self_or_admin(conn, login, agent_id)
        scheduling.set_agent_settings(
            conn, agent_id, {"feed_with_availability": change.with_availability}
        )

    await ctx.run(ctx.write, write)
    return json(_answer(request, change.with_availability, None))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/agents/{agent}/feed", get_feed)
    app.router.add_patch("/agents/{agent}/feed", patch_feed)
    app.router.add_post("/agents/{agent}/feed/rotate", rotate_feed)
