"""An organisation's RDVs as lists, files and counts, and a usager's history.

Lists and files (``/organisations/{org}/rdvs``, ``rdvs.csv``, ``rdvs.xlsx``)
hold the RDVs of the agendas the reader may read, exactly as over CalDAV: an
admin every agent's, a basic agent its own and its service colleagues'.
Filters: ``from`` and ``to`` (required, at most two years apart), ``agent``,
``motif``, ``lieu`` and ``status`` (comma-separated).  A filter naming
something that is not the organisation's, or an agent whose RDVs the reader
may not see, is a 422; filters that match nothing give an empty list or file.
Statistics count every RDV of the organisation and are for its admins.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import Connection

from booking.model import RDV_STATUSES
from calserver.api import exports
from calserver.api.base import (
    ApiContext,
    ApiError,
    context,
    int_param,
    json,
    local_iso,
    login_of,
    not_found,
    parse_moment,
    require_admin,
    role_in,
)
from storage import rdv_lists, scheduling

ORG = "/organisations/{org}"
# The longest period a list, file or count covers.
MAX_PERIOD = timedelta(days=2 * 366)


@dataclass(frozen=True)
class Asked:
    """The list's parameters as read from the URL, before the database."""

    raw_from: str
    raw_to: str
    agent: int | None
    motif: int | None
    lieu: int | None
    statuses: tuple[str, ...]


def _asked(request: web.Request) -> Asked:
    raw_from, raw_to = request.query.get("from", ""), request.query.get("to", "")
    if not raw_from or not raw_to:
        raise ApiError(422, "missing-parameter", "'from' and 'to' are required")
    statuses = tuple(s for s in request.query.get("status", "").split(",") if s)
    unknown = [s for s in statuses if s not in RDV_STATUSES]
    if unknown:
        raise ApiError(
            422,
            "invalid-parameter",
            f"unknown status {unknown[0][:40]!r}; use {', '.join(RDV_STATUSES)}",
        )
    return Asked(
        raw_from,
        raw_to,
        int_param(request, "agent", required=False),
        int_param(request, "motif", required=False),
        int_param(request, "lieu", required=False),
        statuses,
    )


def readable_agents(ctx: ApiContext, conn: Connection, login: str, org: int) -> list[int]:
    """The organisation's agents whose RDV agenda ``login`` may read."""
    _, role = role_in(conn, login, org)
    members = scheduling.organisation_agents(conn, org)
    if role == "admin":
        return [m["id"] for m in members]
    return [m["id"] for m in members if "r" in ctx.agenda_rights(login, m["login"], "rdv")]


def _filter(
    ctx: ApiContext, conn: Connection, login: str, org: int, asked: Asked
) -> tuple[rdv_lists.RdvFilter, str]:
    """The storage filter for what was asked, checked against the
    organisation and the reader's rights; and the organisation's zone."""
    readable = readable_agents(ctx, conn, login, org)
    organisation = scheduling.organisation(conn, org)
    assert organisation is not None
    zone = organisation["time_zone"]
    start = parse_moment(asked.raw_from, zone, "from")
    end = parse_moment(asked.raw_to, zone, "to", end_of_day=True)
    if end <= start:
        raise ApiError(422, "invalid-parameter", "'to' must come after 'from'")
    if end - start > MAX_PERIOD:
        raise ApiError(422, "invalid-parameter", "the period is at most two years")
    agent_ids = readable
    if asked.agent is not None:
        if asked.agent not in readable:
            raise ApiError(
                422, "unknown-agent", "'agent' is not an agent whose RDVs you may see here"
            )
        agent_ids = [asked.agent]
    if asked.motif is not None:
        motif = scheduling.motif(conn, asked.motif)
        if motif is None or motif["organisation_id"] != org:
            raise ApiError(422, "unknown-motif", "'motif' is not a motif of this organisation")
    if asked.lieu is not None:
        lieu = scheduling.lieu(conn, asked.lieu)
        if lieu is None or lieu["organisation_id"] != org:
            raise ApiError(422, "unknown-lieu", "'lieu' is not a lieu of this organisation")
    wanted = rdv_lists.RdvFilter(
        organisation_id=org,
        agent_ids=agent_ids,
        start=int(start.timestamp()),
        end=int(end.timestamp()),
        motif_id=asked.motif,
        lieu_id=asked.lieu,
        statuses=asked.statuses,
    )
    return wanted, zone


async def _rows(request: web.Request) -> tuple[list[dict], str, Asked, int]:
    login, org = await login_of(request), int_param(request, "org")
    assert org is not None
    asked = _asked(request)
    ctx = context(request)

    def read(conn: Connection) -> tuple[list[dict], str]:
        wanted, zone = _filter(ctx, conn, login, org, asked)
        return rdv_lists.rdvs(conn, wanted), zone

    rows, zone = await ctx.run(ctx.read, read)
    return rows, zone, asked, org


def _times(row: dict, zone: str) -> dict[str, str]:
    """An indexed RDV's start and end (POSIX seconds) as ISO 8601 in the zone."""
    return {
        "starts_at": local_iso(datetime.fromtimestamp(row["starts_at"], UTC), zone),
        "ends_at": local_iso(datetime.fromtimestamp(row["ends_at"], UTC), zone),
    }


def _row_json(row: dict, zone: str) -> dict:
    return {
        "id": row["uid"],
        "agent_id": row["agent_id"],
        "agent_name": row["agent_name"],
        "motif_id": row["motif_id"],
        "motif_name": row["motif_name"],
        "service_name": row["service_name"],
        "lieu_id": row["lieu_id"],
        "lieu_name": row["lieu_name"],
        "status": row["status"] or "unknown",
        **_times(row, zone),
        "usagers": row["usagers"],
    }


async def list_rdvs(request: web.Request) -> web.Response:
    rows, zone, _, _ = await _rows(request)
    return json([_row_json(row, zone) for row in rows])


def _attachment(org: int, asked: Asked, extension: str) -> str:
    """The file's name: the organisation's id and the period, nothing personal."""
    period = f"{asked.raw_from[:10]}_{asked.raw_to[:10]}".replace(":", "")
    return f'attachment; filename="rdvs-{org}-{period}.{extension}"'


async def export_csv(request: web.Request) -> web.StreamResponse:
    rows, zone, asked, org = await _rows(request)
    response = web.StreamResponse(headers={"Content-Disposition": _attachment(org, asked, "csv")})
    response.content_type = exports.CSV_TYPE
    response.charset = "utf-8"
    await response.prepare(request)
    for chunk in exports.csv_chunks(rows, ZoneInfo(zone)):
        await response.write(chunk)
    await response.write_eof()
    return response


async def export_xlsx(request: web.Request) -> web.Response:
    rows, zone, asked, org = await _rows(request)
    ctx = context(request)
    content = await ctx.run(exports.xlsx, rows, ZoneInfo(zone))
    return web.Response(
        body=content,
        content_type=exports.XLSX_TYPE,
        headers={"Content-Disposition": _attachment(org, asked, "xlsx")},
    )


def _status_counts(statuses: list[str]) -> dict[str, int]:
    counts = dict.fromkeys(RDV_STATUSES, 0)
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    return counts


def _weeks(first: date, last: date, counted: dict[tuple[int, int], int]) -> list[dict]:
    """Every ISO week from ``first``'s to ``last``'s, with its count."""
    monday = first - timedelta(days=first.weekday())
    found = []
    while monday <= last:
        year, week, _ = monday.isocalendar()
        found.append(
            {
                "week": f"{year}-W{week:02d}",
                "starts_on": monday.isoformat(),
                "count": counted.get((year, week), 0),
            }
        )
        monday += timedelta(days=7)
    return found


async def statistics(request: web.Request) -> web.Response:
    login, org = await login_of(request), int_param(request, "org")
    assert org is not None
    asked = _asked(request)
    ctx = context(request)

    def read(conn: Connection) -> dict:
        require_admin(conn, login, org)
        wanted, zone = _filter(ctx, conn, login, org, asked)
        tz = ZoneInfo(zone)
        found = rdv_lists.counted(conn, wanted)
        names = {m["id"]: m["name"] for m in scheduling.motifs_of(conn, org)}
        by_motif: dict[int | None, int] = {}
        by_week: dict[tuple[int, int], int] = {}
        for motif_id, _status, starts_at in found:
            by_motif[motif_id] = by_motif.get(motif_id, 0) + 1
            year, week, _ = datetime.fromtimestamp(starts_at, tz).isocalendar()
            by_week[(year, week)] = by_week.get((year, week), 0) + 1
        start = datetime.fromtimestamp(wanted.start, tz)
        end = datetime.fromtimestamp(wanted.end, tz)
        return {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "total": len(found),
            "by_motif": [
                {"motif_id": m, "motif_name": names.get(m) if m else None, "count": n}
                for m, n in sorted(by_motif.items(), key=lambda i: (-i[1], i[0] or 0))
            ],
            "by_status": _status_counts([status for _, status, _ in found]),
            "by_week": _weeks(start.date(), (end - timedelta(seconds=1)).date(), by_week),
        }

    return json(await ctx.run(ctx.read, read))


async def usager_history(request: web.Request) -> web.Response:
    login, org = await login_of(request), int_param(request, "org")
    assert org is not None
    usager_id = int_param(request, "id")
    assert usager_id is not None
    ctx = context(request)

    def read(conn: Connection) -> dict:
        readable = readable_agents(ctx, conn, login, org)
        usager = scheduling.usager(conn, usager_id)
        if usager is None or usager["organisation_id"] != org:
            raise not_found("this usager")
        organisation = scheduling.organisation(conn, org)
        assert organisation is not None
        zone = organisation["time_zone"]
        now = time.time()
        found = rdv_lists.usager_rdvs(conn, org, usager_id, readable)

        def shown(r: dict) -> dict:
            return {
                "id": r["uid"],
                "agent_id": r["agent_id"],
                "motif_id": r["motif_id"],
                "lieu_id": r["lieu_id"],
                "status": r["status"] or "unknown",
                **_times(r, zone),
            }

        return {
            "usager_id": usager_id,
            "upcoming": [shown(r) for r in found if r["starts_at"] >= now],
            "past": [shown(r) for r in reversed(found) if r["starts_at"] < now],
            "counts": _status_counts([r["status"] or "unknown" for r in found]),
        }

    return json(await ctx.run(ctx.read, read))


def add_routes(app: web.Application) -> None:
    app.router.add_get(ORG + "/rdvs", list_rdvs)
    app.router.add_get(ORG + "/rdvs.csv", export_csv)
    app.router.add_get(ORG + "/rdvs.xlsx", export_xlsx)
    app.router.add_get(ORG + "/statistics", statistics)
    app.router.add_get(ORG + "/usagers/{id}/rdvs", usager_history)
