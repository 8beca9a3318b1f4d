"""Microsoft 365, for an organisation's admins and its agents.

``/organisations/{org}/m365/connection``: set (PUT: tenant id, client id,
and a client secret or a certificate with its private key; the secret or
key is stored encrypted and never shown again), read (state ``ok`` or
``broken`` with the reason) and delete the organisation's application
connection.  ``/organisations/{org}/agents/{agent}/m365/delegation``: the
agent's own connection (made on the "Connecter Outlook" page,
``calserver/outlook.py``), read or deleted (disconnect: its tokens go) by the
agent itself or an admin.  ``/organisations/{org}/agents/{agent}/m365/log``:
the agent's sync log (the agent itself or an admin).  Without ``[m365] key``
the server cannot store a secret: setting a connection is 503
``m365-not-configured``.
"""

from __future__ import annotations

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
    require_self_or_admin,
    utc_iso_ms,
)
from m365.certificates import CertificateError, check_pair, thumbprint
from m365.secrets import SecretBox
from storage import m365 as repository
from storage.outbox import now_ms

CONNECTION = "/organisations/{org}/m365/connection"
LOG = "/organisations/{org}/agents/{agent}/m365/log"
DELEGATION = "/organisations/{org}/agents/{agent}/m365/delegation"
BOX: web.AppKey[SecretBox | None] = web.AppKey("m365_box")


def _public(found: dict) -> dict:
    """A connection as the API shows it: never its secret."""
    return {
        "organisation_id": found["organisation_id"],
        "tenant_id": found["tenant_id"],
        "client_id": found["client_id"],
        "credential": "secret" if found["certificate"] is None else "certificate",
        "certificate_thumbprint": (
            None if found["certificate"] is None else thumbprint(found["certificate"])
        ),
        "state": found["state"],
        "broken_reason": found["broken_reason"],
        "updated_at": utc_iso_ms(found["updated_ms"]),
    }


def _call(row: dict) -> dict:
    """A sync log entry as the API shows it: its time in ISO 8601."""
    return {**{k: v for k, v in row.items() if k != "at_ms"}, "at": utc_iso_ms(row["at_ms"])}


async def put_connection(request: web.Request) -> web.Response:
    login, org = await login_of(request), int_param(request, "org")
    box = request.app[BOX]
    if box is None:
        raise ApiError(503, "m365-not-configured", "this server has no [m365] key")
    new = await body(request, schemas.M365ConnectionIn)
    sealed, certificate = _credential(box, new)

    def write(conn: Connection) -> dict:
        require_admin(conn, login, org)
        repository.set_connection(
            conn, org, new.tenant_id, new.client_id, sealed, now_ms(), certificate
        )
        found = repository.connection(conn, org)
        assert found is not None
        return _public(found)

    ctx = context(request)
    return json(await ctx.run(ctx.write, write))


def _credential(box: SecretBox, new: schemas.M365ConnectionIn) -> tuple[str, str | None]:
    """(sealed secret or private key, certificate): one way to authenticate."""
    if new.client_secret is not None and new.certificate is None and new.private_key is None:
        return box.seal(new.client_secret), None
    if new.client_secret is None and new.certificate is not None and new.private_key is not None:
        try:
            check_pair(new.certificate, new.private_key)
        except CertificateError as e:
            raise ApiError(422, "invalid-certificate", str(e)) from None
        return box.seal(new.private_key), new.certificate
    raise ApiError(
        422,
        "invalid-value",
        "give either client_secret, or certificate and private_key (not both)",
    )


async def get_connection(request: web.Request) -> web.Response:
    login, org = await login_of(request), int_param(request, "org")

    def read(conn: Connection) -> dict:
        require_admin(conn, login, org)
        found = repository.connection(conn, org)
        if found is None:
            raise not_found("this organisation's Microsoft 365 connection")
        return _public(found)

    ctx = context(request)
    return json(await ctx.run(ctx.read, read))


async def delete_connection(request: web.Request) -> web.Response:
    """Disconnect: the stored secret is deleted; events already in mailboxes stay."""
    login, org = await login_of(request), int_param(request, "org")

    def write(conn: Connection) -> None:
        require_admin(conn, login, org)
        if not repository.delete_connection(conn, org):
            raise not_found("this organisation's Microsoft 365 connection")

    ctx = context(request)
    await ctx.run(ctx.write, write)
    return web.Response(status=204)


async def sync_log(request: web.Request) -> web.Response:
    login, org = await login_of(request), int_param(request, "org")
    agent_id = int_param(request, "agent")

    def read(conn: Connection) -> list[dict]:
        require_self_or_admin(conn, login, org, agent_id, "read another agent's sync log")
        return [_call(row) for row in repository.log_of(conn, agent_id)]

    ctx = context(request)
    return json(await ctx.run(ctx.read, read))


def _delegation(found: dict) -> dict:
    """A delegation as the API shows it: never its tokens."""
    return {
        "agent_id": found["agent_id"],
        "account": found["account"],
        "state": found["state"],
        "broken_reason": found["broken_reason"],
        "connected_at": utc_iso_ms(found["connected_ms"]),
        "updated_at": utc_iso_ms(found["updated_ms"]),
    }


async def get_delegation(request: web.Request) -> web.Response:
    login, org = await login_of(request), int_param(request, "org")
    agent_id = int_param(request, "agent")

    def read(conn: Connection) -> dict:
        require_self_or_admin(conn, login, org, agent_id, "read another agent's connection")
        found = repository.delegation(conn, agent_id)
        if found is None:
            raise not_found("this agent's Outlook connection")
        return _delegation(found)

    ctx = context(request)
    return json(await ctx.run(ctx.read, read))


async def delete_delegation(request: web.Request) -> web.Response:
    """Disconnect the agent's Outlook: its stored tokens are deleted."""
    login, org = await login_of(request), int_param(request, "org")
    agent_id = int_param(request, "agent")

    def write(conn: Connection) -> None:
        require_self_or_admin(conn, login, org, agent_id, "disconnect another agent")
        if not repository.delete_delegation(conn, agent_id, now_ms()):
            raise not_found("this agent's Outlook connection")

    ctx = context(request)
    await ctx.run(ctx.write, write)
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    app.router.add_put(CONNECTION, put_connection)
    app.router.add_get(CONNECTION, get_connection)
    app.router.add_delete(CONNECTION, delete_connection)
    app.router.add_get(LOG, sync_log)
    app.router.add_get(DELEGATION, get_delegation)
    app.router.add_delete(DELEGATION, delete_delegation)
