"""Plages d'ouverture, indisponibilités and RDVs of an agent, through the API.

Each is a VEVENT in the agent's ``plages``, ``indisponibilites`` or ``rdv``
collection, built by ``booking.events`` and stored by the CalDAV storage's own
write path (``plugins.agenda_writer``): the same objects, the same booking
check, the same per-agent lock as a CalDAV PUT.  Rights are the CalDAV rights
of those collections.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import Connection

from booking import events, limits
from booking.agenda import agent_zone, rdv_agenda, usagers_of_rdv
from booking.recurrence import FAR_FUTURE
from booking.rules import BookingRefused
from calserver.api import schemas
from calserver.api.base import (
    ApiContext,
    ApiError,
    body,
    context,
    forbidden,
    int_param,
    json,
    local_iso,
    login_of,
    not_found,
    parse_moment,
    role_in,
)
from plugins import agenda_writer
from storage import agenda_index, scheduling
from storage.database import set_author

AGENT = "/agents/{agent}"


def _owner(conn: Connection, agent_id: int) -> dict:
    agent = scheduling.agent(conn, agent_id)
    if agent is None:
        raise not_found("this agent")
    return agent


def _require(ctx, login: str, owner: dict, agenda: str, right: str) -> None:  # type: ignore[no-untyped-def]
    granted = ctx.agenda_rights(login, owner["login"], agenda)
    if not granted:
        raise not_found("this agent's agenda")
    if right not in granted:
        raise forbidden(f"you may not {'change' if right == 'w' else 'read'} this agenda")


def _rrule(
    recurrence: schemas.Weekly | schemas.Monthly | None, until: str | None, zone: str
) -> dict | None:
    if recurrence is None:
        if until is not None:
            raise ApiError(422, "invalid-value", "'until' only applies to a recurrence")
        return None
    if isinstance(recurrence, schemas.Weekly):
        rule: dict = {
            "FREQ": "WEEKLY",
            "INTERVAL": recurrence.every_weeks,
            "BYDAY": recurrence.weekdays,
        }
    else:
        if recurrence.nth == 0:
            raise ApiError(422, "invalid-value", "'nth' is 1 to 5, or -1 for the last one")
        rule = {"FREQ": "MONTHLY", "BYDAY": f"{recurrence.nth}{recurrence.weekday}"}
    if until is not None:
        last_day = _day(until, "until")
        rule["UNTIL"] = datetime.combine(last_day, time(23, 59, 59), ZoneInfo(zone)).astimezone(UTC)
    return rule


def _checked_rrule(
    recurrence: schemas.Weekly | schemas.Monthly | None,
    until: str | None,
    zone: str,
    start: datetime,
    end: datetime,
) -> dict | None:
    """The entry's rule, after the limits every agenda entry obeys (checked
    here too, before the event is built: a date out of range would not build)."""
    now = datetime.now(UTC)
    limits.check_span(start, end, now)
    rule = _rrule(recurrence, until, zone)
    if rule is not None and "UNTIL" in rule:
        limits.check_until(rule["UNTIL"], start, now)
    return rule


def _describe(href: str, text: str, zone: str) -> dict:
    parsed = events.parse(text, zone)
    rule = parsed.master.get("RRULE")
    return {
        "id": parsed.uid,
        "href": href,
        "title": str(parsed.master.get("SUMMARY", "")),
        "starts_at": local_iso(parsed.start, zone),
        "ends_at": local_iso(parsed.end, zone),
        "recurrence": rule.to_ical().decode() if rule is not None else None,
        "lieu_id": parsed.lieu_id,
        "motif_ids": parsed.motif_ids,
    }


def _href(uid: str) -> str:
    return f"{uid}.ics"


def _new_uid() -> str:
    return f"{uuid.uuid4()}@calserver"


def _agenda_routes(app: web.Application, agenda: str, build) -> None:  # type: ignore[no-untyped-def]
    """List, create and delete for plages and indisponibilités."""

    async def list_all(request: web.Request) -> web.Response:
        login, agent_id = await login_of(request), int_param(request, "agent")
        ctx = context(request)

        def read(conn: Connection) -> list[dict]:
            owner = _owner(conn, agent_id)
            _require(ctx, login, owner, agenda, "r")
            zone = agent_zone(conn, agent_id)
            path = f"{owner['login']}/{agenda}"
            # A colleague reads another agent's absences as CalDAV shows them.
            masked = ctx.rights.masks(login, owner["login"], agenda)
            described = []
            for href, text in agenda_writer.event_texts(conn, path):
                try:
                    described.append(_describe(href, events.masked(text) if masked else text, zone))
                except BookingRefused:
                    continue  # not an event the engine reads (a client's VTODO, say)
            return described

        return json(await ctx.run(ctx.read, read))

    async def create(request: web.Request) -> web.Response:
        login, agent_id = await login_of(request), int_param(request, "agent")
        ctx = context(request)
        payload = await body(request, build.schema)

        def write(conn: Connection) -> dict:
            owner = _owner(conn, agent_id)
            _require(ctx, login, owner, agenda, "w")
            zone = agent_zone(conn, agent_id)
            uid = _new_uid()
            text = build(conn, payload, zone, uid)
            path = f"{owner['login']}/{agenda}"
            stored = agenda_writer.put_event(conn, path, _href(uid), text)
            return _describe(_href(uid), stored.text or "", zone)

        return json(await ctx.run(ctx.write, write), status=201)

    async def delete(request: web.Request) -> web.Response:
        login, agent_id = await login_of(request), int_param(request, "agent")
        uid = request.match_info["uid"]
        ctx = context(request)

        def write(conn: Connection) -> None:
            owner = _owner(conn, agent_id)
            _require(ctx, login, owner, agenda, "w")
            path = f"{owner['login']}/{agenda}"
            href = agenda_writer.href_of(conn, path, uid)
            if href is None or not agenda_writer.delete_event(conn, path, href):
                raise not_found("this entry")

        await ctx.run(ctx.write, write)
        return web.Response(status=204)

    app.router.add_get(f"{AGENT}/{agenda}", list_all)
    app.router.add_post(f"{AGENT}/{agenda}", create)
    app.router.add_delete(f"{AGENT}/{agenda}/{{uid}}", delete)


def _day(raw: str, name: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ApiError(422, "invalid-value", f"{name!r} is not a date: {raw!r}") from None


def _build_plage(conn: Connection, plage: schemas.PlageIn, zone: str, uid: str) -> str:
    first = _day(plage.first_day, "first_day")
    tz = ZoneInfo(zone)
    start = datetime.combine(first, time.fromisoformat(plage.start_time), tz)
    end = datetime.combine(first, time.fromisoformat(plage.end_time), tz)
    if end <= start:
        raise ApiError(422, "invalid-value", "a plage ends after it starts, on the same day")
    rrule = _checked_rrule(plage.recurrence, plage.until, zone, start, end)
    lieu = scheduling.lieu(conn, plage.lieu_id) if plage.lieu_id is not None else None
    return events.build_event(
        zone=zone,
        start=start,
        end=end,
        summary=plage.title or "Plage d'ouverture",
        uid=uid,
        rrule=rrule,
        transparent=True,
        motif_ids=plage.motif_ids,
        lieu_id=plage.lieu_id,
        location=events.location_text("public_office", lieu) if lieu else None,
    )


_build_plage.schema = schemas.PlageIn  # type: ignore[attr-defined]


def _build_absence(conn: Connection, absence: schemas.AbsenceIn, zone: str, uid: str) -> str:
    start = parse_moment(absence.starts_at, zone, "starts_at")
    end = parse_moment(absence.ends_at, zone, "ends_at", end_of_day=True)
    if end <= start:
        raise ApiError(422, "invalid-value", "an indisponibilité ends after it starts")
    return events.build_event(
        zone=zone,
        start=start,
        end=end,
        summary=absence.title or "Indisponibilité",
        uid=uid,
        rrule=_checked_rrule(absence.recurrence, absence.until, zone, start, end),
    )


_build_absence.schema = schemas.AbsenceIn  # type: ignore[attr-defined]


# -- RDVs ---------------------------------------------------------------------


def _rdv_json(agent_id: int, text: str, zone: str) -> dict:
    parsed = events.parse(text, zone)
    return {
        "id": parsed.uid,
        "agent_id": agent_id,
        "motif_id": parsed.motif_ids[0] if parsed.motif_ids else None,
        "lieu_id": parsed.lieu_id,
        "starts_at": local_iso(parsed.start, zone),
        "ends_at": local_iso(parsed.end, zone),
        "status": parsed.rdv_status,
        "usager_ids": parsed.usager_ids,
        "sequence": parsed.sequence,
        "notify_usagers": parsed.notify_usagers,
    }


def _motif_in_reach(conn: Connection, motif_id: int, agent_id: int) -> tuple[dict, dict]:
    motif = scheduling.motif(conn, motif_id)
    if motif is None or motif["organisation_id"] not in scheduling.roles_of(conn, agent_id):
        raise ApiError(422, "unknown-motif", "this motif is not one of the agent's organisations")
    organisation = scheduling.organisation(conn, motif["organisation_id"])
    assert organisation is not None
    return motif, organisation


def _lieu_of(conn: Connection, lieu_id: int | None, organisation_id: int) -> dict | None:
    if lieu_id is None:
        return None
    lieu = scheduling.lieu(conn, lieu_id)
    if lieu is None or lieu["organisation_id"] != organisation_id or not lieu["enabled"]:
        raise ApiError(422, "unknown-lieu", "this lieu is not an open lieu of the organisation")
    return lieu


def _rdv_end(
    start: datetime, minutes: int | None, ends_at: str | None, zone: str, default: timedelta
) -> datetime:
    """Where an RDV ends: after the minutes or at the end the agent set, else
    ``default`` after its start.  Whether that duration is allowed is the
    booking rules' call (``booking.rules.check_duration``)."""
    if minutes is not None and ends_at is not None:
        raise ApiError(422, "invalid-value", "give duration_in_min or ends_at, not both")
    if minutes is not None:
        return start + timedelta(minutes=minutes)
    if ends_at is not None:
        return parse_moment(ends_at, zone, "ends_at")
    return start + default


async def create_rdv(request: web.Request) -> web.Response:
    login = await login_of(request)
    rdv = await body(request, schemas.RdvIn)
    ctx = context(request)

    def write(conn: Connection) -> dict:
        set_author(conn, login)
        owner = _owner(conn, rdv.agent_id)
        _require(ctx, login, owner, "rdv", "w")
        motif, organisation = _motif_in_reach(conn, rdv.motif_id, rdv.agent_id)
        role_in(conn, login, organisation["id"])  # the writer works there too
        zone = organisation["time_zone"]
        lieu = _lieu_of(conn, rdv.lieu_id, organisation["id"])
        usagers = usagers_of_rdv(conn, rdv.usager_ids, organisation["id"])
        start = parse_moment(rdv.starts_at, zone, "starts_at")
        length = timedelta(minutes=motif["duration_minutes"])
        end = _rdv_end(start, rdv.duration_in_min, rdv.ends_at, zone, length)
        uid = _new_uid()
        text = events.build_rdv(
            zone=zone,
            uid=uid,
            start=start,
            end=end,
            motif=motif,
            lieu=lieu,
            organisation_id=organisation["id"],
            usagers=usagers,
            status=rdv.status,
            notify_usagers=rdv.notify_usagers,
        )
        path = rdv_agenda(owner["login"])
        stored = agenda_writer.put_event(conn, path, _href(uid), text)
        return _rdv_json(rdv.agent_id, stored.text or "", zone)

    return json(await ctx.run(ctx.write, write), status=201)


async def list_rdvs(request: web.Request) -> web.Response:
    login, agent_id = await login_of(request), int_param(request, "agent")
    ctx = context(request)

    def read(conn: Connection) -> list[dict]:
        owner = _owner(conn, agent_id)
        _require(ctx, login, owner, "rdv", "r")
        zone = agent_zone(conn, agent_id)
        # Without dates: every RDV of the agenda.
        raw_from, raw_to = request.query.get("from"), request.query.get("to")
        start = parse_moment(raw_from, zone, "from") if raw_from else limits.EARLIEST
        end = parse_moment(raw_to, zone, "to", end_of_day=True) if raw_to else FAR_FUTURE
        texts = agenda_index.texts_in_window(
            conn, agent_id, "rdv", int(start.timestamp()), int(end.timestamp())
        )
        return [_rdv_json(agent_id, text, zone) for text in texts]

    return json(await ctx.run(ctx.read, read))


def _stored_rdv(conn: Connection, owner: dict, uid: str) -> tuple[str, str, str]:
    """(agenda path, href, text) of the owner's RDV with this UID, or 404."""
    path = rdv_agenda(owner["login"])
    href = agenda_writer.href_of(conn, path, uid)
    text = agenda_writer.event_text(conn, path, href) if href else None
    if href is None or text is None:
        raise not_found("this RDV")
    return path, href, text


def change_rdv(
    ctx: ApiContext,
    conn: Connection,
    login: str,
    agent_id: int,
    uid: str,
    change: schemas.RdvPatch,
) -> dict:
    """Change an RDV's time, lieu or status as ``login`` (the API's PATCH and
    DELETE, the back office's status form): rights of the agenda, then the
    agenda writer's one check."""
    set_author(conn, login)
    owner = _owner(conn, agent_id)
    _require(ctx, login, owner, "rdv", "w")
    path, href, text = _stored_rdv(conn, owner, uid)
    zone = agent_zone(conn, agent_id)
    parsed = events.parse(text, zone)
    if not parsed.motif_ids:
        raise ApiError(422, "unknown-motif", "this RDV has no motif: change it over CalDAV")
    motif, organisation = _motif_in_reach(conn, parsed.motif_ids[0], agent_id)
    zone = organisation["time_zone"]
    values = schemas.given(change)
    start = end = None
    if values.keys() & {"starts_at", "duration_in_min", "ends_at"}:
        raw = values.get("starts_at")
        start = parse_moment(raw, zone, "starts_at") if raw else parsed.start
        length = parsed.end - parsed.start  # a move keeps the RDV's duration
        end = _rdv_end(start, values.get("duration_in_min"), values.get("ends_at"), zone, length)
    lieu = None
    if "lieu_id" in values:
        found = _lieu_of(conn, values["lieu_id"], organisation["id"])
        lieu = (values["lieu_id"], events.location_text(motif["location_type"], found))
    new_text = events.rescheduled(
        parsed, zone, start=start, end=end, lieu=lieu, status=values.get("status")
    )
    stored = agenda_writer.put_event(conn, path, href, new_text)
    return _rdv_json(agent_id, stored.text or "", zone)


def _change_rdv(
    request: web.Request, login: str, agent_id: int, uid: str, change: schemas.RdvPatch
):  # type: ignore[no-untyped-def]
    ctx = context(request)

    def write(conn: Connection) -> dict:
        return change_rdv(ctx, conn, login, agent_id, uid, change)

    return ctx.run(ctx.write, write)


async def patch_rdv(request: web.Request) -> web.Response:
    login, agent_id = await login_of(request), int_param(request, "agent")
    change = await body(request, schemas.RdvPatch)
    return json(await _change_rdv(request, login, agent_id, request.match_info["uid"], change))


async def cancel_rdv(request: web.Request) -> web.Response:
    """DELETE revokes: the RDV stays in the agenda, STATUS:CANCELLED."""
    login, agent_id = await login_of(request), int_param(request, "agent")
    change = schemas.RdvPatch(status="revoked")
    return json(await _change_rdv(request, login, agent_id, request.match_info["uid"], change))


def readable_rdv(
    ctx: ApiContext, conn: Connection, login: str, agent_id: int, uid: str
) -> tuple[str, str, str]:
    """(agenda path, href, text) of an RDV ``login`` may read, or 404/403."""
    owner = _owner(conn, agent_id)
    _require(ctx, login, owner, "rdv", "r")
    return _stored_rdv(conn, owner, uid)


async def get_rdv(request: web.Request) -> web.Response:
    login, agent_id = await login_of(request), int_param(request, "agent")
    uid = request.match_info["uid"]
    ctx = context(request)

    def read(conn: Connection) -> dict:
        _, _, text = readable_rdv(ctx, conn, login, agent_id, uid)
        return _rdv_json(agent_id, text, agent_zone(conn, agent_id))

    return json(await ctx.run(ctx.read, read))


def add_routes(app: web.Application) -> None:
    _agenda_routes(app, "plages", _build_plage)
    _agenda_routes(app, "indisponibilites", _build_absence)
    app.router.add_post("/rdvs", create_rdv)
    app.router.add_get(f"{AGENT}/rdvs", list_rdvs)
    app.router.add_get(f"{AGENT}/rdvs/{{uid}}", get_rdv)
    app.router.add_patch(f"{AGENT}/rdvs/{{uid}}", patch_rdv)
    app.router.add_delete(f"{AGENT}/rdvs/{{uid}}", cancel_rdv)
