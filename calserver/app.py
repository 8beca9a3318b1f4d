"""The aiohttp application: every route of calserver on one base URL."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from aiohttp import web

from calserver import outlook
from calserver.access_log import access_log
from calserver.api import (
    admin,
    agendas,
    base,
    feed_links,
    invitations,
    m365,
    notices,
    openapi,
    rdv_lists,
    records,
    slots,
    webhooks,
)
from calserver.auth_gate import AuthGate
from calserver.background import background_pool
from calserver.config import Settings
from calserver.in_flight import InFlight
from calserver.web import backoffice, selfservice, site
from calserver.web import booking as booking_pages
from calserver.wsgi_bridge import WSGIBridge
from feeds.builder import FeedSettings
from feeds.handler import FeedService
from feeds.handler import handler as feed_handler
from m365.secrets import SecretBox
from m365.tokens import Credentials, DelegatedTokens, TokenSource
from m365.worker import Pusher, PushSettings
from notifications.worker import Notifier, NotifierSettings
from plugins.auth_throttle import Throttle
from plugins.caldav import build_caldav
from storage.database import Database
from storage.deliveries import Retention
from storage.notifications import Retention as NotificationRetention
from webhooks.retry import DAY_MS, RetryPolicy
from webhooks.targets import TargetPolicy, networks
from webhooks.worker import Worker, WorkerSettings

DAV_PREFIX = "/dav"
API_PREFIX = "/api/v1"
DAV_METHODS = (
    "GET",
    "HEAD",
    "OPTIONS",
    "PUT",
    "DELETE",
    "PROPFIND",
    "PROPPATCH",
    "REPORT",
    "MKCOL",
    "MKCALENDAR",
    "MOVE",
    "COPY",
    "POST",
)
log = logging.getLogger("calserver")


async def _well_known(request: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently(DAV_PREFIX + "/")


def _healthz(db: Database):  # type: ignore[no-untyped-def]
    async def handler(_request: web.Request) -> web.Response:
        def ping() -> None:
            with db.connection() as conn:
                conn.exec_driver_sql("SELECT 1")

        try:
            await _run_blocking(ping)
        except Exception:
            log.exception("health check: database unreachable")
            return web.json_response(
                {"status": "unavailable", "database": "unreachable"}, status=503
            )
        return web.json_response({"status": "ok", "database": "ok"})

    return handler


async def _run_blocking(fn) -> None:  # type: ignore[no-untyped-def]
    await asyncio.get_running_loop().run_in_executor(None, fn)


def add_api_routes(api: web.Application) -> None:
    """The JSON API's routes: the operations of ``openapi.OPERATIONS`` (a
    test holds the two equal) and the document itself."""
    api.router.add_get("/openapi.json", openapi.serve)
    modules = (admin, rdv_lists, records, agendas, slots, feed_links, webhooks, notices, m365)
    for module in (*modules, invitations):
        module.add_routes(api)


def _api(
    ctx: base.ApiContext,
    searches: ThreadPoolExecutor,
    targets: TargetPolicy,
    box: SecretBox | None,
) -> web.Application:
    api = web.Application(middlewares=[base.errors])  # body size: base.MAX_BODY
    api[base.CONTEXT] = ctx
    api[slots.SEARCHES] = searches
    api[webhooks.POLICY] = targets
    api[m365.BOX] = box
    add_api_routes(api)
    return api


def add_pages(app: web.Application, ctx: site.WebContext, api: base.ApiContext) -> None:
    """The HTML pages: each feature's sub-application under its prefix, and
    the static files they share.  The back office logs agents in through the
    API's gate and reads rights and changes RDVs as the API does."""
    key = site.session_key(ctx.db)
    for prefix, add_routes in (
        (site.STATIC_PREFIX, site.add_static),
        (booking_pages.PREFIX, booking_pages.add_routes),
        (selfservice.PREFIX, selfservice.add_routes),
        (backoffice.PREFIX, lambda sub: backoffice.add_routes(sub, api, api.gate)),
    ):
        app.add_subapp(prefix, site.pages_app(ctx, key, add_routes))


def target_policy(settings: Settings) -> TargetPolicy:
    """Where webhooks may be sent, from ``[webhooks]``."""
    return TargetPolicy(settings.webhook_allow_http, networks(settings.webhook_allowed_networks))


WORKER_TASK = web.AppKey("webhook_worker", asyncio.Task)
NOTIFIER_TASK = web.AppKey("notification_worker", asyncio.Task)
PUSH_TASK = web.AppKey("m365_push", asyncio.Task)


def worker_settings(settings: Settings) -> WorkerSettings:
    """How webhooks are delivered, from ``[webhooks]``."""
    return WorkerSettings(
        policy=target_policy(settings),
        timeout_s=settings.webhook_timeout_seconds,
        retry=RetryPolicy(
            first_ms=settings.webhook_retry_first_ms,
            give_up_after_ms=settings.webhook_retry_days * DAY_MS,
        ),
        poll_s=settings.webhook_poll_seconds,
        keep=Retention(
            delivered_ms=settings.webhook_keep_delivered_days * DAY_MS,
            failed_ms=settings.webhook_keep_failed_days * DAY_MS,
            waiting_ms=settings.webhook_retry_days * DAY_MS,
        ),
    )


def notifier_settings(settings: Settings) -> NotifierSettings:
    """How notifications are sent, from ``[notifications]``, ``[smtp]`` and ``[sms]``."""
    return NotifierSettings(
        smtp=settings.smtp,
        sms=settings.sms,
        base_url=settings.base_url,
        retry=RetryPolicy(
            first_ms=settings.notification_retry_first_ms,
            give_up_after_ms=settings.notification_retry_hours * 3_600_000,
        ),
        poll_s=settings.notification_poll_seconds,
        keep=NotificationRetention(
            done_ms=settings.notification_keep_days * DAY_MS,
            failed_ms=settings.notification_keep_failed_days * DAY_MS,
        ),
    )


def _run_in_process(
    app: web.Application, key: web.AppKey[asyncio.Task], run: Callable[[asyncio.Event], Any]
) -> None:
    """Run a background worker in this process while it serves."""
    stop = asyncio.Event()

    async def start(_app: web.Application) -> None:
        app[key] = asyncio.create_task(run(stop))

    async def finish(_app: web.Application) -> None:
        stop.set()
        await app[key]

    app.on_startup.append(start)
    app.on_cleanup.insert(0, finish)


def push_settings(settings: Settings) -> PushSettings | None:
    """How RDVs are pushed to Microsoft 365, from ``[m365]``; None without a key."""
    if not settings.m365_key:
        return None
    return PushSettings(
        box=SecretBox(settings.m365_key),
        base_url=settings.base_url,
        authority_url=settings.m365_authority_url,
        graph_url=settings.m365_graph_url,
        ca_bundle=settings.m365_ca_bundle,
        timeout_s=settings.m365_timeout_seconds,
        poll_s=settings.m365_poll_seconds,
        retry_first_ms=settings.m365_retry_first_ms,
        past_days=settings.m365_past_days,
        ahead_days=settings.m365_ahead_days,
        reconcile_every_s=settings.m365_reconcile_hours * 3600,
        keep_log_days=settings.m365_keep_log_days,
        delegated=delegated_app(settings),
    )


def delegated_app(settings: Settings) -> Credentials | None:
    """The server's app registration for agents' own connections, when
    ``[m365] delegated_client_id`` and its secret are set."""
    if not (settings.m365_delegated_client_id and settings.m365_delegated_client_secret):
        return None
    return Credentials(
        settings.m365_delegated_tenant,
        settings.m365_delegated_client_id,
        settings.m365_delegated_client_secret,
    )


def outlook_settings(push: PushSettings) -> outlook.Outlook:
    """What the "Connecter Outlook" page needs: the key, the server's app
    registration for delegated connections (None: not offered), the URLs."""
    tokens = None
    if push.delegated is not None:
        source = TokenSource(push.authority_url, push.ca_bundle, push.timeout_s)
        tokens = DelegatedTokens(source, push.delegated)
    return outlook.Outlook(push.box, tokens, push.base_url, push.authority_url)


def create_app(settings: Settings, db: Database) -> web.Application:
    """Build the application on a database whose schema is already migrated."""
    in_flight = InFlight()
    app = web.Application(
        client_max_size=settings.max_content_length,
        middlewares=[access_log, in_flight.middleware],
    )
    dav = build_caldav(db, max_content_length=settings.max_content_length, realm=settings.realm)
    gate = AuthGate(dav.auth, Throttle())
    caldav = WSGIBridge(
        dav.application,
        script_name=DAV_PREFIX,
        max_body=settings.max_content_length,
        threads=settings.threads,
        guard=gate.caldav_guard(settings.realm),
    )
    api_executor = ThreadPoolExecutor(max_workers=settings.threads, thread_name_prefix="api")
    api_context = base.ApiContext(
        db, gate, dav.rights, settings.realm, api_executor, settings.base_url
    )
    # Créneaux searches get a quarter of the threads (one of the default four),
    # at the lowest CPU priority: however many are asked at once, the other API
    # requests and feeds keep their threads and come first for the cores.
    searches = background_pool(max(1, settings.threads // 4), "search")
    # The in-process notifier prepares its messages (reads, templates, ICS,
    # MIME) at the same lowest priority: a booking's request is not kept
    # waiting by the messages of the ones before it.  No thread starts
    # unless it runs.
    notifying = background_pool(1, "notifier")
    # A thread waiting on the database gets the GIL back within 1 ms of its
    # answer (5 ms by default) while searches compute beside it.
    sys.setswitchinterval(0.001)
    push = push_settings(settings)
    box = push.box if push else None
    app.add_subapp(API_PREFIX, _api(api_context, searches, target_policy(settings), box))
    if push is not None:
        app.add_subapp(outlook.PREFIX, outlook.pages(api_context, outlook_settings(push)))
    feed_settings = FeedSettings(
        refresh=timedelta(minutes=settings.feed_refresh_minutes),
        past_days=settings.feed_past_days,
        ahead_days=settings.feed_ahead_days,
    )
    feed_service = FeedService(db, feed_settings, settings.base_url, api_executor)
    app.router.add_get("/feeds/{token}.ics", feed_handler(feed_service))
    # The pages' writes (bookings, verification requests) get threads of their
    # own: waiting for the write lock, they leave the read threads to the pages.
    page_writes = ThreadPoolExecutor(
        max_workers=max(1, settings.threads // 2), thread_name_prefix="page-write"
    )
    web_context = site.WebContext(
        db, api_executor, settings.base_url, settings.smtp, searches, page_writes
    )
    add_pages(app, web_context, api_context)
    app.router.add_route("*", "/.well-known/caldav", _well_known)
    app.router.add_route("*", "/.well-known/carddav", _well_known)
    app.router.add_get("/healthz", _healthz(db))
    app.router.add_route("*", DAV_PREFIX, caldav.handle)
    app.router.add_route("*", DAV_PREFIX + "/{tail:.*}", caldav.handle)

    async def _close(_app: web.Application) -> None:
        caldav.close()
        gate.close()
        api_executor.shutdown(wait=False, cancel_futures=True)
        searches.shutdown(wait=False, cancel_futures=True)
        notifying.shutdown(wait=False, cancel_futures=True)
        page_writes.shutdown(wait=False, cancel_futures=True)
        db.dispose()

    app.on_cleanup.append(_close)
    if settings.webhook_worker:
        _run_in_process(app, WORKER_TASK, Worker(db, worker_settings(settings)).run)
    if settings.notification_worker:
        notifier = Notifier(db, notifier_settings(settings), notifying, in_flight.busy)
        _run_in_process(app, NOTIFIER_TASK, notifier.run)
    if push is not None and settings.m365_worker:
        _run_in_process(app, PUSH_TASK, Pusher(db, push).run)
    return app
