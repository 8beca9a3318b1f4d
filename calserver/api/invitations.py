"""Invitations, for an organisation's other systems (Démarches Simplifiées...):
``POST /organisations/{org}/invitations`` (admin) makes a link to the public
booking page that books for a given usager without identity or email check
(``calserver.web.booking.invitation``); ``GET .../invitations/{id}`` says
whether it was used.  The link's token is shown once and kept as a digest."""

from __future__ import annotations

import secrets
import time

from aiohttp import web
from sqlalchemy import Connection

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
    utc_iso,
)
from calserver.web.booking.invitation import invitation_link, token_hash
from storage import public_booking, scheduling

INVITATIONS = "/organisations/{org}/invitations"
DAY_S = 86_400


def _shown(row: dict) -> dict:
    return {
        "id": row["id"],
        "organisation_id": row["organisation_id"],
        "usager_id": row["usager_id"],
        "motif_id": row["motif_id"],
        "service_id": row["service_id"],
        "lieu_id": row["lieu_id"],
        "reference": row["reference"],
        "created_at": utc_iso(row["created_at"]),
        "expires_at": utc_iso(row["expires_at"]),
        "rdv_agent_id": row["agent_id"],
        "rdv_id": row["rdv_uid"],
    }


def _check_targets(conn: Connection, org: int, invitation: schemas.InvitationIn) -> None:
    """What the invitation names is its organisation's."""
    for kind, record_id, read in (
        ("motif", invitation.motif_id, scheduling.motif),
        ("service", invitation.service_id, scheduling.service),
        ("lieu", invitation.lieu_id, scheduling.lieu),
    ):
        if record_id is not None:
            found = read(conn, record_id)
            if found is None or found["organisation_id"] != org:
                raise ApiError(
                    422, f"unknown-{kind}", f"this {kind} is not one of this organisation"
                )


def _usager(conn: Connection, org: int, invitation: schemas.InvitationIn) -> int:
    found, _ = scheduling.usager_by_email(
        conn,
        {
            "organisation_id": org,
            "first_name": invitation.first_name,
            "last_name": invitation.last_name,
            "email": invitation.email,
            "phone": invitation.phone,
        },
    )
    return found["id"]


async def create(request: web.Request) -> web.Response:
    login, org = await login_of(request), int_param(request, "org")
    assert org is not None
    invitation = await body(request, schemas.InvitationIn)
    ctx = context(request)
    token = secrets.token_urlsafe(24)

    def write(conn: Connection) -> dict:
        require_admin(conn, login, org)
        _check_targets(conn, org, invitation)
        organisation = scheduling.organisation(conn, org)
        assert organisation is not None
        now = int(time.time())
        row = public_booking.create_invitation(
            conn,
            {
                "organisation_id": org,
                "token_hash": token_hash(token),
                "usager_id": _usager(conn, org, invitation),
                "motif_id": invitation.motif_id,
                "service_id": invitation.service_id,
                "lieu_id": invitation.lieu_id,
                "reference": invitation.reference,
                "created_at": now,
                "expires_at": now + invitation.valid_days * DAY_S,
            },
        )
        link = invitation_link(ctx.base_url, organisation["slug"], token)
        return {**_shown(row), "link": link}

    return json(await ctx.run(ctx.write, write), status=201)


async def get_one(request: web.Request) -> web.Response:
    login, org = await login_of(request), int_param(request, "org")
    invitation_id = int_param(request, "id")
    assert org is not None and invitation_id is not None
    ctx = context(request)

    def read(conn: Connection) -> dict:
        require_admin(conn, login, org)
        found = public_booking.invitation(conn, invitation_id)
        if found is None or found["organisation_id"] != org:
            raise not_found("this invitation")
        return _shown(found)

    return json(await ctx.run(ctx.read, read))


def add_routes(app: web.Application) -> None:
    app.router.add_post(INVITATIONS, create)
    app.router.add_get(INVITATIONS + "/{id}", get_one)
