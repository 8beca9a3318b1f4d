"""``GET /api/v1/creneaux`` and ``GET /api/v1/creneaux/next``: the créneaux
engine for agents (``public=true`` applies the motif's booking delays, as the
public page will).

Searches run on their own small thread pool (``SEARCHES``), so that however
many are asked at once, the other requests keep their threads; each has a time
budget counted from its arrival (``booking.limits``), so a search queued
behind others gives up instead of piling up.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from aiohttp import web
from sqlalchemy import Connection

from booking import agenda, limits
from booking.model import Creneau
from calserver.api.base import (
    MAX_ID,
    ApiError,
    context,
    int_param,
    json,
    local_iso,
    login_of,
    not_found,
    parse_moment,
    role_in,
)
from storage import scheduling

MAX_WINDOW = timedelta(days=93)
NEXT_LOOKAHEAD = timedelta(days=366)
SEARCHES = web.AppKey("searches", ThreadPoolExecutor)


def _agents_param(request: web.Request) -> list[int] | None:
    raw = request.query.get("agents", "").strip()
    if not raw:
        return None
    parts = [p.strip() for p in raw.split(",")]
    if not all(p.isascii() and p.isdigit() and int(p) <= MAX_ID for p in parts):
        raise ApiError(422, "invalid-parameter", "'agents' is a comma-separated list of agent ids")
    return [int(p) for p in parts]


def _creneau(c: Creneau, zone: str) -> dict:
    return {
        "starts_at": local_iso(c.start, zone),
        "ends_at": local_iso(c.end, zone),
        "agent_id": c.agent_id,
        "lieu_id": c.lieu_id,
        "agent_ids": list(c.agent_ids),
    }


def _motif_zone(conn: Connection, login: str, motif_id: int) -> tuple[str, int]:
    """The zone of the motif's organisation and the searching agent's id
    (404 unless the agent works there)."""
    motif = scheduling.motif(conn, motif_id)
    if motif is None:
        raise not_found("this motif")
    agent_id, _ = role_in(conn, login, motif["organisation_id"])
    organisation = scheduling.organisation(conn, motif["organisation_id"])
    assert organisation is not None
    return organisation["time_zone"], agent_id


def _slot_params(request: web.Request) -> tuple[int, int | None, list[int] | None, bool]:
    """motif, lieu, agents and public, the parameters both searches take."""
    motif_id = int_param(request, "motif")
    assert motif_id is not None
    lieu_id = int_param(request, "lieu", required=False)
    public = request.query.get("public", "false").lower() in ("1", "true", "yes")
    return motif_id, lieu_id, _agents_param(request), public


async def _search(request: web.Request, read) -> dict:  # type: ignore[no-untyped-def]
    """Run ``read(conn, deadline)`` in a read transaction on the search pool."""
    ctx = context(request)
    deadline = limits.deadline()

    def run() -> dict:
        return ctx.read(lambda conn: read(conn, deadline))

    return await asyncio.get_running_loop().run_in_executor(request.app[SEARCHES], run)


async def creneaux(request: web.Request) -> web.Response:
    login = await login_of(request)
    motif_id, lieu_id, agents, public = _slot_params(request)
    for name in ("from", "to"):
        if not request.query.get(name):
            raise ApiError(422, "missing-parameter", f"the parameter {name!r} is required")

    def read(conn: Connection, deadline: float) -> dict:
        zone, searcher = _motif_zone(conn, login, motif_id)
        start = parse_moment(request.query["from"], zone, "from")
        end = parse_moment(request.query["to"], zone, "to", end_of_day=True)
        if end <= start:
            raise ApiError(422, "invalid-parameter", "'to' must come after 'from'")
        if end - start > MAX_WINDOW:
            raise ApiError(422, "invalid-parameter", "ask for at most 93 days at a time")
        query = agenda.SlotQuery(motif_id, start, end, public, lieu_id, agents, searcher)
        found = agenda.find_creneaux(conn, query, deadline=deadline)
        return {
            "motif_id": motif_id,
            "from": local_iso(start, zone),
            "to": local_iso(end, zone),
            "creneaux": [_creneau(c, zone) for c in found],
        }

    return json(await _search(request, read))


async def next_creneau(request: web.Request) -> web.Response:
    login = await login_of(request)
    motif_id, lieu_id, agents, public = _slot_params(request)

    def read(conn: Connection, deadline: float) -> dict:
        zone, searcher = _motif_zone(conn, login, motif_id)
        now = datetime.now(UTC)
        raw = request.query.get("from")
        start = max(parse_moment(raw, zone, "from"), now) if raw else now
        motif = scheduling.motif(conn, motif_id)
        assert motif is not None
        horizon = (
            now + timedelta(minutes=motif["max_delay_minutes"])
            if public
            else min(start + NEXT_LOOKAHEAD, now + limits.SEARCH_AHEAD)
        )
        query = agenda.SlotQuery(
            motif_id, start, max(start, horizon), public, lieu_id, agents, searcher
        )
        found = agenda.next_availability(conn, query, now, deadline)
        return {"creneau": _creneau(found, zone) if found else None}

    return json(await _search(request, read))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/creneaux", creneaux)
    app.router.add_get("/creneaux/next", next_creneau)
