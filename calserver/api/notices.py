"""Notifications through the API: an RDV's receipts log, and the agent's
preference for emails about its agenda.

Receipts are read by whoever may read the agenda holding the RDV (its
agent, the agents of its services, its admins); recipients are masked
(``l***@example.org``, ``+33*******78``).  The preference is the agent's own
(or its admins'), like its feed.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import Connection

from calserver.api import schemas
from calserver.api.agendas import AGENT, readable_rdv
from calserver.api.base import body, context, int_param, json, login_of, not_found, utc_iso_ms
from calserver.api.feed_links import self_or_admin
from plugins import agenda_writer
from storage import notifications

WHAT = "its notification settings"


async def rdv_notifications(request: web.Request) -> web.Response:
    login, agent_id = await login_of(request), int_param(request, "agent")
    uid = request.match_info["uid"]
    ctx = context(request)

    def read(conn: Connection) -> dict:
        path, href, _ = readable_rdv(ctx, conn, login, agent_id, uid)
        item_id = agenda_writer.item_id_of(conn, path, href)
        if item_id is None:
            raise not_found("this RDV")
        return {
            "receipts": [
                _with_iso(r, "at_ms", "at") for r in notifications.receipts_of(conn, item_id)
            ],
            "waiting": [
                _with_iso(w, "due_ms", "due_at") for w in notifications.waiting_of(conn, item_id)
            ],
        }

    return json(await ctx.run(ctx.read, read))


def _with_iso(row: dict, stored: str, shown: str) -> dict:
    """A row with its stored millisecond time as ISO 8601 (UTC), as the API
    answers every time."""
    return {**{k: v for k, v in row.items() if k != stored}, shown: utc_iso_ms(row[stored])}


def _level(conn: Connection, agent_id: int) -> dict:
    return {"rdv_notifications_level": notifications.agent_level(conn, agent_id)}


async def get_settings(request: web.Request) -> web.Response:
    login, agent_id = await login_of(request), int_param(request, "agent")
    ctx = context(request)

    def read(conn: Connection) -> dict:
        self_or_admin(conn, login, agent_id, WHAT)
        return _level(conn, agent_id)

    return json(await ctx.run(ctx.read, read))


async def patch_settings(request: web.Request) -> web.Response:
    login, agent_id = await login_of(request), int_param(request, "agent")
    change = await body(request, schemas.NotificationSettingsPatch)
    ctx = context(request)

    def write(conn: Connection) -> dict:
        self_or_admin(conn, login, agent_id, WHAT)
        notifications.set_agent_level(conn, agent_id, change.rdv_notifications_level)
        return _level(conn, agent_id)

    return json(await ctx.run(ctx.write, write))


def add_routes(app: web.Application) -> None:
    app.router.add_get(f"{AGENT}/rdvs/{{uid}}/notifications", rdv_notifications)
    app.router.add_get(f"{AGENT}/notification_settings", get_settings)
    app.router.add_patch(f"{AGENT}/notification_settings", patch_settings)
