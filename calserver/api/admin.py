"""Setting an organisation up from nothing: organisations (operators),
agents' memberships, roles and services, deactivation, and services renamed
or disabled.

Who is who:

- an **operator** is an agent with the server-level flag ``operator``, set by
  ``calserver operator LOGIN`` (never through the API).  It creates
  organisations and is an admin of every organisation through the API
  (``base.role_in``), so it can give a new organisation its first admin;
- an organisation's **admins** manage its agents, roles and services;
- an organisation always keeps at least one active admin: demoting or
  deactivating the last one is a 409 ``last-admin``.

A deactivated agent stays, with its agendas and their history: it cannot log
in (CalDAV and API, ``storage.agents.password_hash``), its agendas are
read-only for its admins and hidden from its colleagues
(``plugins.rights``), no slot of it is offered (``scheduling.agents_of_service``),
and nothing new is written into them.  An agent with RDVs still to come
cannot be deactivated (409 ``coming-rdvs``): they are moved or cancelled
first, while the agent's agenda can still be written.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web
from sqlalchemy import Connection

from booking import public_holidays
from booking.model import CANCELLED_STATUSES
from calserver.api import schemas
from calserver.api.base import (
    ApiError,
    body,
    context,
    forbidden,
    int_param,
    json,
    login_of,
    not_found,
    require_admin,
)
from storage import agents, rdv_lists, scheduling

ORG = "/organisations/{org}"
MEMBER = ORG + "/agents/{agent}"


def _require_operator(conn: Connection, login: str) -> None:
    if not agents.is_operator(conn, login):
        raise forbidden("only an operator of the server creates organisations")


def _check_zones(time_zone: str, holiday_zone: str) -> None:
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ApiError(422, "invalid-value", f"unknown time zone {time_zone!r}") from None
    try:
        public_holidays.validate_zone(holiday_zone)
    except ValueError as e:
        raise ApiError(422, "invalid-value", str(e)) from None


async def list_organisations(request: web.Request) -> web.Response:
    """Operators: every organisation; others: their own."""
    login = await login_of(request)

    def read(conn: Connection) -> list[dict]:
        agent = scheduling.agent_by_login(conn, login)
        assert agent is not None
        if agents.is_operator(conn, login):
            ids = scheduling.organisation_ids(conn)
        else:
            ids = sorted(scheduling.roles_of(conn, agent["id"]))
        return [found for i in ids if (found := scheduling.organisation(conn, i))]

    ctx = context(request)
    return json(await ctx.run(ctx.read, read))


async def create_organisation(request: web.Request) -> web.Response:
    login = await login_of(request)
    new = await body(request, schemas.OrganisationIn)
    _check_zones(new.time_zone, new.holiday_zone)
    settings = schemas.given(new)
    name, slug = settings.pop("name"), settings.pop("slug")

    def write(conn: Connection) -> dict:
        _require_operator(conn, login)
        existing = scheduling.organisation_by_slug(conn, slug)
        if existing is not None:
            raise scheduling.Duplicate(
                "an organisation with this slug already exists", existing["id"]
            )
        created = agents.create_organisation(conn, name, slug, settings.pop("time_zone"))
        return scheduling.update_organisation(conn, created, settings) or {}

    ctx = context(request)
    return json(await ctx.run(ctx.write, write), status=201)


def _member(conn: Connection, org: int, agent_id: int) -> dict:
    """The agent as the organisation's agent list shows it, or 404."""
    role = scheduling.roles_of(conn, agent_id).get(org)
    agent = scheduling.agent(conn, agent_id)
    if role is None or agent is None:
        raise not_found("this agent")
    services = scheduling.service_ids_of(conn, [agent_id])[agent_id]
    theirs = {s["id"] for s in scheduling.organisation_services(conn, org)}
    return {**agent, "role": role, "service_ids": sorted(services & theirs)}


def _open_services(conn: Connection, org: int, service_ids: list[int]) -> list[int]:
    """``service_ids``, each an enabled service of the organisation, or 422."""
    services = {s["id"]: s for s in scheduling.organisation_services(conn, org)}
    for service_id in service_ids:
        service = services.get(service_id)
        if service is None:
            raise ApiError(
                422, "unknown-service", f"service {service_id} is not of this organisation"
            )
        if not service["enabled"]:
            raise ApiError(422, "disabled-service", f"the service {service['name']!r} is disabled")
    return service_ids


def keep_an_admin(conn: Connection, org: int, leaving: int) -> None:
    """The organisation must keep an active admin once ``leaving`` no longer is one."""
    if set(agents.active_admins(conn, org)) <= {leaving}:
        raise ApiError(
            409,
            "last-admin",
            "this agent is the organisation's last admin: make another agent admin first",
        )


async def add_membership(request: web.Request) -> web.Response:
    """Put an agent of another organisation into this one too.  An operator
    may add anyone; an admin, an agent of an organisation it administers."""
    login, org = await login_of(request), int_param(request, "org")
    new = await body(request, schemas.MembershipIn)

    def write(conn: Connection) -> dict:
        require_admin(conn, login, org)
        agent = scheduling.agent_by_login(conn, new.login)
        me = scheduling.agent_by_login(conn, login)
        assert me is not None
        mine = {o for o, r in scheduling.roles_of(conn, me["id"]).items() if r == "admin"}
        theirs = scheduling.roles_of(conn, agent["id"]) if agent else {}
        if agent is None or not (agents.is_operator(conn, login) or mine & set(theirs)):
            raise ApiError(
                422,
                "unknown-agent",
                "no agent with this login works in an organisation you administer",
            )
        if org in theirs:
            raise scheduling.Duplicate("this agent is already in the organisation", agent["id"])
        if theirs and set(theirs.values()) == {"intervenant"}:
            raise ApiError(422, "invalid-agent", "an intervenant has no login to share")
        agents.add_membership(conn, agent["id"], org, new.role)
        agents.set_services(conn, agent["id"], org, _open_services(conn, org, new.service_ids))
        scheduling.tell_agent(conn, agent["id"])
        return _member(conn, org, agent["id"])

    ctx = context(request)
    return json(await ctx.run(ctx.write, write), status=201)


async def patch_membership(request: web.Request) -> web.Response:
    login, org = await login_of(request), int_param(request, "org")
    agent_id = int_param(request, "agent")
    values = schemas.given(await body(request, schemas.MembershipPatch))

    def write(conn: Connection) -> dict:
        require_admin(conn, login, org)
        current = _member(conn, org, agent_id)
        role = values.get("role", current["role"])
        if role != current["role"]:
            if current["role"] == "intervenant":
                raise ApiError(
                    422, "invalid-agent", "an intervenant has no login: it cannot become an agent"
                )
            if current["role"] == "admin":
                keep_an_admin(conn, org, agent_id)
            agents.set_role(conn, agent_id, org, role)
        if "service_ids" in values:
            services = _open_services(conn, org, values["service_ids"])
            agents.set_services(conn, agent_id, org, services)
        scheduling.tell_agent(conn, agent_id)
        return _member(conn, org, agent_id)

    ctx = context(request)
    return json(await ctx.run(ctx.write, write))


def _may_deactivate(conn: Connection, login: str, org: int, agent_id: int) -> None:
    """An operator, or an admin of every organisation the agent works in (a
    deactivation is server-wide: it must not reach into an organisation the
    admin does not run)."""
    require_admin(conn, login, org)
    _member(conn, org, agent_id)
    if agents.is_operator(conn, login):
        return
    me = scheduling.agent_by_login(conn, login)
    assert me is not None
    mine = {o for o, r in scheduling.roles_of(conn, me["id"]).items() if r == "admin"}
    if not set(scheduling.roles_of(conn, agent_id)) <= mine:
        raise forbidden(
            "this agent also works in organisations you do not administer: ask an operator"
        )


def _set_active(active: bool) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The handler that deactivates (``active`` False) or reactivates an agent."""

    async def handler(request: web.Request) -> web.Response:
        login, org = await login_of(request), int_param(request, "org")
        assert org is not None
        agent_id = int_param(request, "agent")
        assert agent_id is not None
        ctx = context(request)

        def write(conn: Connection) -> dict:
            _may_deactivate(conn, login, org, agent_id)
            if not active:
                _may_leave(conn, agent_id)
            agents.set_deactivated(conn, agent_id, None if active else int(time.time()))
            scheduling.tell_agent(conn, agent_id)
            return _member(conn, org, agent_id)

        member = await ctx.run(ctx.write, write)
        ctx.rights.forget(member["login"])  # this process's cached rights on its agendas
        return json(member)

    return handler


def _may_leave(conn: Connection, agent_id: int) -> None:
    """Every organisation keeps an admin, and the agent has no RDV to come
    (its agendas are about to become read-only)."""
    for organisation, role in scheduling.roles_of(conn, agent_id).items():
        if role == "admin":
            keep_an_admin(conn, organisation, agent_id)
    coming = rdv_lists.coming_rdvs(conn, agent_id, int(time.time()), CANCELLED_STATUSES)
    if coming:
        raise ApiError(
            409, "coming-rdvs", f"this agent has {coming} RDV(s) to come: move or cancel them first"
        )


async def patch_service(request: web.Request) -> web.Response:
    login, org = await login_of(request), int_param(request, "org")
    service_id = int_param(request, "id")
    values = schemas.given(await body(request, schemas.ServicePatch))

    def write(conn: Connection) -> dict:
        require_admin(conn, login, org)
        service = scheduling.service(conn, service_id)
        if service is None or service["organisation_id"] != org:
            raise not_found("this service")
        return scheduling.update_service(conn, service_id, values) or {}

    ctx = context(request)
    return json(await ctx.run(ctx.write, write))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/organisations", list_organisations)
    app.router.add_post("/organisations", create_organisation)
    app.router.add_post(ORG + "/memberships", add_membership)
    app.router.add_patch(MEMBER + "/membership", patch_membership)
    app.router.add_post(MEMBER + "/deactivate", _set_active(False))
    app.router.add_post(MEMBER + "/reactivate", _set_active(True))
    app.router.add_patch(ORG + "/services/{id}", patch_service)
