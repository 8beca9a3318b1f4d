"""An organisation's webhook endpoints, for its admins.

``/organisations/{org}/webhook_endpoints``: list, create (the secret is in
that answer only), read, change (target, subscriptions, enabled), delete,
rotate the secret (``/rotate``: the previous one keeps signing for the
overlap asked, 24 hours by default) and replay the current state
(``/sync``).  Creating an endpoint replays the current state of its
subscribed models as ``created`` events with reason ``initial_sync`` unless
the body says ``"initial_sync": false`` (RDV-SP's trigger).
"""

from __future__ import annotations

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
    utc_iso_ms,
)
from storage import deliveries, outbox
from storage import webhooks as repository
from storage.scheduling import Duplicate
from webhooks.signing import new_secret
from webhooks.targets import TargetPolicy, TargetRefused

ENDPOINTS = "/organisations/{org}/webhook_endpoints"
POLICY = web.AppKey("webhook_targets", TargetPolicy)
DEFAULT_SUBSCRIPTIONS = ["rdv", "absence", "plage_ouverture"]


def _public(endpoint: repository.Endpoint) -> dict:
    """An endpoint as the API shows it: never its secrets."""
    return {
        "id": endpoint["id"],
        "organisation_id": endpoint["organisation_id"],
        "target_url": endpoint["target_url"],
        "subscriptions": endpoint["subscriptions"],
        "enabled": bool(endpoint["enabled"]),
        "disabled_reason": endpoint["disabled_reason"],
        "created_at": utc_iso(endpoint["created_at"]),
        "previous_secret_valid_until": utc_iso(endpoint["previous_secret_until"]),
    }


def _delivery(row: dict) -> dict:
    """A delivery of the log, its stored millisecond times as ISO 8601 (its
    queue key is the workers' business: model and record_id say the same)."""
    shown = {k: v for k, v in row.items() if not k.endswith("_ms") and k != "record_key"}
    shown.update(
        next_attempt_at=utc_iso_ms(row["next_attempt_ms"]),
        created_at=utc_iso_ms(row["created_ms"]),
        delivered_at=utc_iso_ms(row["delivered_ms"]),
        attempts_log=[
            {**{k: v for k, v in a.items() if k != "at_ms"}, "at": utc_iso_ms(a["at_ms"])}
            for a in row["attempts_log"]
        ],
    )
    return shown


def _target(request: web.Request, url: str) -> str:
    try:
        return request.app[POLICY].check_url(url)
    except TargetRefused as e:
        raise ApiError(422, "invalid-target", str(e)) from None


def _found(conn: Connection, org: int, endpoint_id: int) -> repository.Endpoint:
    endpoint = repository.endpoint(conn, endpoint_id)
    if endpoint is None or endpoint["organisation_id"] != org:
        raise not_found("this webhook endpoint")
    return endpoint


def _unique(conn: Connection, org: int, url: str, other_than: int | None = None) -> None:
    existing = repository.endpoint_at(conn, org, url, other_than)
    if existing is not None:
        raise Duplicate("this organisation already has an endpoint at this URL", existing)


async def list_endpoints(request: web.Request) -> web.Response:
    login, org = await login_of(request), int_param(request, "org")

    def read(conn: Connection) -> list[dict]:
        require_admin(conn, login, org)
        return [_public(e) for e in repository.endpoints_of(conn, org)]

    ctx = context(request)
    return json(await ctx.run(ctx.read, read))


async def create_endpoint(request: web.Request) -> web.Response:
    login, org = await login_of(request), int_param(request, "org")
    new = await body(request, schemas.WebhookEndpointIn)
    models = new.subscriptions or DEFAULT_SUBSCRIPTIONS
    secret = new_secret()

    def write(conn: Connection) -> dict:
        require_admin(conn, login, org)  # before the target: a non-admin learns nothing of it
        url = _target(request, new.target_url)
        _unique(conn, org, url)
        endpoint = repository.create_endpoint(conn, org, url, secret, models, new.enabled)
        replayed = outbox.replay(conn, org, models, endpoint["id"]) if new.initial_sync else 0
        return {**_public(endpoint), "secret": secret, "initial_sync_events": replayed}

    ctx = context(request)
    return json(await ctx.run(ctx.write, write), status=201)


async def get_endpoint(request: web.Request) -> web.Response:
    login, org = await login_of(request), int_param(request, "org")
    endpoint_id = int_param(request, "id")

    def read(conn: Connection) -> dict:
        require_admin(conn, login, org)
        return _public(_found(conn, org, endpoint_id))

    ctx = context(request)
    return json(await ctx.run(ctx.read, read))


async def patch_endpoint(request: web.Request) -> web.Response:
    login, org = await login_of(request), int_param(request, "org")
    endpoint_id = int_param(request, "id")
    values = schemas.given(await body(request, schemas.WebhookEndpointPatch))

    def write(conn: Connection) -> dict:
        require_admin(conn, login, org)
        _found(conn, org, endpoint_id)
        if "target_url" in values:
            values["target_url"] = _target(request, values["target_url"])
            _unique(conn, org, values["target_url"], other_than=endpoint_id)
        return _public(repository.update_endpoint(conn, endpoint_id, values) or {})

    ctx = context(request)
    return json(await ctx.run(ctx.write, write))


async def delete_endpoint(request: web.Request) -> web.Response:
    login, org = await login_of(request), int_param(request, "org")
    endpoint_id = int_param(request, "id")

    def write(conn: Connection) -> None:
        require_admin(conn, login, org)
        _found(conn, org, endpoint_id)
        repository.delete_endpoint(conn, endpoint_id)

    ctx = context(request)
    await ctx.run(ctx.write, write)
    return web.Response(status=204)


async def rotate_secret(request: web.Request) -> web.Response:
    login, org = await login_of(request), int_param(request, "org")
    endpoint_id = int_param(request, "id")
    rotation = (
        await body(request, schemas.SecretRotation)
        if request.can_read_body
        else schemas.SecretRotation()
    )
    secret = new_secret()

    def write(conn: Connection) -> dict:
        require_admin(conn, login, org)
        _found(conn, org, endpoint_id)
        until = int(time.time()) + rotation.overlap_hours * 3600
        rotated = repository.rotate_secret(conn, endpoint_id, secret, until)
        assert rotated is not None
        return {**_public(rotated), "secret": secret}

    ctx = context(request)
    return json(await ctx.run(ctx.write, write))


async def sync(request: web.Request) -> web.Response:
    """Replay the current state to this endpoint (after it lost its data, say)."""
    login, org = await login_of(request), int_param(request, "org")
    endpoint_id = int_param(request, "id")

    def write(conn: Connection) -> dict:
        require_admin(conn, login, org)
        endpoint = _found(conn, org, endpoint_id)
        return {
            "initial_sync_events": outbox.replay(conn, org, endpoint["subscriptions"], endpoint_id)
        }

    ctx = context(request)
    return json(await ctx.run(ctx.write, write), status=202)


async def list_deliveries(request: web.Request) -> web.Response:
    """The delivery log: the endpoint's latest 100 deliveries, each with its attempts."""
    login, org = await login_of(request), int_param(request, "org")
    endpoint_id = int_param(request, "id")

    def read(conn: Connection) -> list[dict]:
        require_admin(conn, login, org)
        _found(conn, org, endpoint_id)
        return [_delivery(row) for row in deliveries.deliveries_of(conn, endpoint_id)]

    ctx = context(request)
    return json(await ctx.run(ctx.read, read))


async def redeliver(request: web.Request) -> web.Response:
    """Send one delivery again (``.../deliveries/{delivery}/redeliver``), or
    every failed one (``.../redeliver_failed``)."""
    login, org = await login_of(request), int_param(request, "org")
    endpoint_id = int_param(request, "id")
    delivery_id = int_param(request, "delivery", required=False)

    def write(conn: Connection) -> dict:
        require_admin(conn, login, org)
        _found(conn, org, endpoint_id)
        count = deliveries.redeliver(conn, endpoint_id, outbox.now_ms(), delivery_id)
        if delivery_id is not None and not count:
            raise not_found("this delivery")
        return {"redelivered": count}

    ctx = context(request)
    return json(await ctx.run(ctx.write, write), status=202)


def add_routes(app: web.Application) -> None:
    app.router.add_get(ENDPOINTS, list_endpoints)
    app.router.add_post(ENDPOINTS, create_endpoint)
    app.router.add_get(ENDPOINTS + "/{id}", get_endpoint)
    app.router.add_patch(ENDPOINTS + "/{id}", patch_endpoint)
    app.router.add_delete(ENDPOINTS + "/{id}", delete_endpoint)
    app.router.add_post(ENDPOINTS + "/{id}/rotate", rotate_secret)
    app.router.add_post(ENDPOINTS + "/{id}/sync", sync)
    app.router.add_get(ENDPOINTS + "/{id}/deliveries", list_deliveries)
    app.router.add_post(ENDPOINTS + "/{id}/deliveries/{delivery}/redeliver", redeliver)
    app.router.add_post(ENDPOINTS + "/{id}/redeliver_failed", redeliver)
