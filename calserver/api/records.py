"""Organisations, services, agents, lieux, motifs and usagers.

Everything sits under its organisation (``/api/v1/organisations/{org}/...``):
members (admin or basic agents) read; admins change the organisation, its
services, agents, lieux and motifs; every member manages usagers, as agents
do at a front desk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web
from sqlalchemy import Connection

from booking import public_holidays
from booking.motifs import check_motif
from booking.rules import BookingRefused
from calserver.api import schemas
from calserver.api.base import (
    ApiError,
    body,
    context,
    int_param,
    json,
    login_of,
    not_found,
    require_admin,
    require_self_or_admin,
    role_in,
    utc_iso,
)
from storage import agents, scheduling

ORG = "/organisations/{org}"


async def me(request: web.Request) -> web.Response:
    login = await login_of(request)

    def read(conn: Connection) -> dict:
        agent = scheduling.agent_by_login(conn, login)
        assert agent is not None
        roles = scheduling.roles_of(conn, agent["id"])
        services = scheduling.service_ids_of(conn, [agent["id"]])[agent["id"]]
        return {
            **agent,
            "organisations": [{"id": o, "role": r} for o, r in sorted(roles.items())],
            "service_ids": sorted(services),
            "operator": agents.is_operator(conn, login),
        }

    ctx = context(request)
    return json(await ctx.run(ctx.read, read))


async def get_organisation(request: web.Request) -> web.Response:
    login, org = await login_of(request), int_param(request, "org")

    def read(conn: Connection) -> dict:
        role_in(conn, login, org)
        return scheduling.organisation(conn, org) or {}

    ctx = context(request)
    return json(await ctx.run(ctx.read, read))


def _check_organisation_patch(values: dict) -> None:
    if "time_zone" in values:
        try:
            ZoneInfo(values["time_zone"])
        except (ZoneInfoNotFoundError, ValueError):
            raise ApiError(
                422, "invalid-value", f"unknown time zone {values['time_zone']!r}"
            ) from None
    if "holiday_zone" in values:
        try:
            public_holidays.validate_zone(values["holiday_zone"])
        except ValueError as e:
            raise ApiError(422, "invalid-value", str(e)) from None


async def patch_organisation(request: web.Request) -> web.Response:
    login, org = await login_of(request), int_param(request, "org")
    values = schemas.given(await body(request, schemas.OrganisationPatch))
    _check_organisation_patch(values)

    def write(conn: Connection) -> dict:
        require_admin(conn, login, org)
        return scheduling.update_organisation(conn, org, values) or {}

    ctx = context(request)
    return json(await ctx.run(ctx.write, write))


async def list_services(request: web.Request) -> web.Response:
    login, org = await login_of(request), int_param(request, "org")

    def read(conn: Connection) -> list[dict]:
        role_in(conn, login, org)
        return scheduling.organisation_services(conn, org)

    ctx = context(request)
    return json(await ctx.run(ctx.read, read))


async def create_service(request: web.Request) -> web.Response:
    login, org = await login_of(request), int_param(request, "org")
    new = await body(request, schemas.ServiceIn)

    def write(conn: Connection) -> dict:
        require_admin(conn, login, org)
        for existing in scheduling.organisation_services(conn, org):
            if existing["name"] == new.name:
                raise scheduling.Duplicate(
                    f"the service {new.name!r} already exists", existing["id"]
                )
        created = agents.service_id(conn, org, new.name, secretariat=new.secretariat)
        return scheduling.service(conn, created) or {}

    ctx = context(request)
    return json(await ctx.run(ctx.write, write), status=201)


async def list_agents(request: web.Request) -> web.Response:
    login, org = await login_of(request), int_param(request, "org")

    def read(conn: Connection) -> list[dict]:
        role_in(conn, login, org)
        found = scheduling.organisation_agents(conn, org)
        services = scheduling.service_ids_of(conn, [a["id"] for a in found])
        here = {s["id"] for s in scheduling.organisation_services(conn, org)}
        return [{**a, "service_ids": sorted(services[a["id"]] & here)} for a in found]

    ctx = context(request)
    return json(await ctx.run(ctx.read, read))


async def create_agent(request: web.Request) -> web.Response:
    login, org = await login_of(request), int_param(request, "org")
    new = await body(request, schemas.AgentIn)

    def write(conn: Connection) -> dict:
        require_admin(conn, login, org)
        try:
            agent_id = agents.create_agent(
                conn,
                new.login,
                organisation=org,
                role=new.role,
                password=new.password,
                services_names=tuple(new.services),
                display_name=new.display_name,
                email=new.email,
            )
        except agents.AgentError as e:
            raise ApiError(422, "invalid-agent", str(e)) from None
        return scheduling.agent(conn, agent_id) or {}

    ctx = context(request)
    return json(await ctx.run(ctx.write, write), status=201)


async def patch_agent(request: web.Request) -> web.Response:
    login, org = await login_of(request), int_param(request, "org")
    agent_id = int_param(request, "agent")
    values = schemas.given(await body(request, schemas.AgentPatch))

    def write(conn: Connection) -> dict:
        require_self_or_admin(conn, login, org, agent_id, "change another agent's settings")
        return scheduling.set_agent_settings(conn, agent_id, values) or {}

    ctx = context(request)
    return json(await ctx.run(ctx.write, write))


# -- lieux, motifs, usagers: one shape, three tables --------------------------


@dataclass(frozen=True)
class RecordKind:
    name: str  # for messages
    path: str
    create_schema: type
    patch_schema: type
    get: Callable[[Connection, int], dict | None]
    list_of: Callable[[Connection, int], list[dict]]
    create: Callable[[Connection, dict], dict]
    update: Callable[[Connection, int, dict], dict | None]
    admin_only: bool
    check: Callable[[Connection, int, dict], None] | None = None
    # The list's ``q`` parameter: records whose name words start with its words.
    search: Callable[[Connection, int, str], list[dict]] | None = None
    # The record as answered, when it differs from the row (times as ISO 8601).
    shown: Callable[[dict], dict] = dict


def _check_motif(conn: Connection, org: int, fields: dict) -> None:
    try:
        check_motif(fields)
    except BookingRefused as e:
        raise ApiError(422, e.code, e.message) from None
    service = scheduling.service(conn, fields["service_id"])
    if service is None or service["organisation_id"] != org:
        raise ApiError(
            422, "unknown-service", "the motif's service is not one of this organisation"
        )
    if not service["enabled"] and "id" not in fields:  # a new motif ("id": a change)
        raise ApiError(422, "disabled-service", f"the service {service['name']!r} is disabled")


def _usager(row: dict) -> dict:
    shown = {k: v for k, v in row.items() if k != "search_key"}
    return {**shown, "created_at": utc_iso(row["created_at"])}


# A search answers at most this many usagers, the closest names first.
SEARCH_LIMIT = 50


def _search_usagers(conn: Connection, org: int, query: str) -> list[dict]:
    words = query.split()
    if not words or len(query) > 200:
        raise ApiError(
            422, "invalid-parameter", "'q' is one to a few words of at most 200 characters"
        )
    return scheduling.search_usagers(conn, org, words, SEARCH_LIMIT)


KINDS = (
    RecordKind(
        "lieu", "lieux", schemas.LieuIn, schemas.LieuPatch,
        scheduling.lieu, scheduling.lieux_of, scheduling.create_lieu, scheduling.update_lieu,
        admin_only=True,
    ),
    RecordKind(
        "motif", "motifs", schemas.MotifIn, schemas.MotifPatch,
        scheduling.motif, scheduling.motifs_of, scheduling.create_motif, scheduling.update_motif,
        admin_only=True, check=_check_motif,
    ),
    RecordKind(
        "usager", "usagers", schemas.UsagerIn, schemas.UsagerPatch,
        scheduling.usager, scheduling.usagers_of, scheduling.create_usager,
        scheduling.update_usager, admin_only=False, shown=_usager, search=_search_usagers,
    ),
)  # fmt: skip


def _handlers(kind: RecordKind) -> dict[str, Callable[[web.Request], Any]]:
    def allowed(conn: Connection, login: str, org: int) -> None:
        if kind.admin_only:
            require_admin(conn, login, org)
        else:
            role_in(conn, login, org)

    def found(conn: Connection, org: int, record_id: int) -> dict:
        record = kind.get(conn, record_id)
        if record is None or record["organisation_id"] != org:
            raise not_found(f"this {kind.name}")
        return record

    async def list_all(request: web.Request) -> web.Response:
        login, org = await login_of(request), int_param(request, "org")

        query = request.query.get("q") if kind.search else None

        def read(conn: Connection) -> list[dict]:
            role_in(conn, login, org)
            if kind.search and query is not None:
                found = kind.search(conn, org, query)
            else:
                found = kind.list_of(conn, org)
            return [kind.shown(record) for record in found]

        ctx = context(request)
        return json(await ctx.run(ctx.read, read))

    async def get_one(request: web.Request) -> web.Response:
        login, org = await login_of(request), int_param(request, "org")
        record_id = int_param(request, "id")

        def read(conn: Connection) -> dict:
            role_in(conn, login, org)
            return kind.shown(found(conn, org, record_id))

        ctx = context(request)
        return json(await ctx.run(ctx.read, read))

    async def create(request: web.Request) -> web.Response:
        login, org = await login_of(request), int_param(request, "org")
        fields = schemas.given(await body(request, kind.create_schema))

        def write(conn: Connection) -> dict:
            allowed(conn, login, org)
            if kind.check:
                kind.check(conn, org, fields)
            return kind.shown(kind.create(conn, {**fields, "organisation_id": org}))

        ctx = context(request)
        return json(await ctx.run(ctx.write, write), status=201)

    async def patch(request: web.Request) -> web.Response:
        login, org = await login_of(request), int_param(request, "org")
        record_id = int_param(request, "id")
        values = schemas.given(await body(request, kind.patch_schema))

        def write(conn: Connection) -> dict:
            allowed(conn, login, org)
            current = found(conn, org, record_id)
            if kind.check:
                kind.check(conn, org, {**current, **values})
            return kind.shown(kind.update(conn, record_id, values) or {})

        ctx = context(request)
        return json(await ctx.run(ctx.write, write))

    return {"list": list_all, "get": get_one, "create": create, "patch": patch}


def add_routes(app: web.Application) -> None:
    app.router.add_get("/me", me)
    app.router.add_get(ORG, get_organisation)
    app.router.add_patch(ORG, patch_organisation)
    app.router.add_get(ORG + "/services", list_services)
    app.router.add_post(ORG + "/services", create_service)
    app.router.add_get(ORG + "/agents", list_agents)
    app.router.add_post(ORG + "/agents", create_agent)
    app.router.add_patch(ORG + "/agents/{agent}", patch_agent)
    for kind in KINDS:
        handlers = _handlers(kind)
        app.router.add_get(f"{ORG}/{kind.path}", handlers["list"])
        app.router.add_post(f"{ORG}/{kind.path}", handlers["create"])
        app.router.add_get(f"{ORG}/{kind.path}/{{id}}", handlers["get"])
        app.router.add_patch(f"{ORG}/{kind.path}/{{id}}", handlers["patch"])
