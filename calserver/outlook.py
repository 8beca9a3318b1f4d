"""The "Connecter Outlook" page: an agent connects its own Outlook calendar.

``/outlook/`` (behind the same HTTP Basic login as the API) shows the
logged-in agent's delegated connection and two buttons.  "Connecter Outlook"
(POST ``/outlook/connect``) starts msal's authorization code flow with PKCE
and sends the browser to Microsoft's sign-in page; the flow (its PKCE
verifier, ``state`` and nonce, and the agent it is for) travels sealed in a
short-lived cookie of this path only.  Microsoft sends the browser back to
``/outlook/callback``: msal checks that the answer's ``state`` is the flow's
(so an answer forged or replayed from another browser is refused), redeems
the code with the verifier, and the refresh token is stored sealed.
"Déconnecter" (POST ``/outlook/disconnect``) deletes the stored tokens.

The forms carry a token bound to the login (an HMAC under the server's
key), so another site cannot post them with the browser's cached Basic
credentials; the page is never framed and never cached, and every value it
shows is HTML-escaped.
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass
from html import escape
from urllib.parse import urlsplit

from aiohttp import web
from sqlalchemy import Connection

from calserver.api import base
from calserver.auth_gate import AuthRefused
from m365.secrets import SecretBox, SecretError
from m365.tokens import DelegatedTokens, FlowError, Refused, Unavailable
from storage import m365 as repository
from storage import scheduling
from storage.outbox import now_ms

log = logging.getLogger("calserver.outlook")
PREFIX = "/outlook"
COOKIE = "calserver_outlook_flow"
FLOW_TTL_S = 600  # the time to sign in at Microsoft


@dataclass(frozen=True)
class Outlook:
    box: SecretBox
    tokens: DelegatedTokens | None  # None: no [m365] delegated_* app on this server
    base_url: str
    authority_url: str

    @property
    def redirect_uri(self) -> str:
        return f"{self.base_url.rstrip('/')}{PREFIX}/callback"


OUTLOOK: web.AppKey[Outlook] = web.AppKey("outlook")


# -- the page -------------------------------------------------------------------


def _page(status: int, title: str, paragraphs: list[str], forms: str = "") -> web.Response:
    """A complete page; ``paragraphs`` are plain text (escaped here),
    ``forms`` already built from escaped values."""
    text = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    html = (
        '<!doctype html><html lang="fr"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title></head><body><main>"
        f"<h1>{escape(title)}</h1>{text}{forms}</main></body></html>"
    )
    return web.Response(status=status, text=html, content_type="text/html", charset="utf-8")


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _form(action: str, label: str, token: str) -> str:
    return (
        f'<form method="post" action="{escape(PREFIX + action)}">'
        f'<input type="hidden" name="csrf" value="{escape(token)}">'
        f'<button type="submit">{escape(label)}</button></form>'
    )


@web.middleware
async def _errors(request: web.Request, handler: base.Handler) -> web.StreamResponse:
    """Refusals as small pages (a 401 asks the browser to log in), security
    headers on every answer."""
    realm = base.context(request).realm
    try:
        response = await handler(request)
    except AuthRefused as e:
        response = _page(e.status, "Outlook", [e.message])
        response.headers.update(e.headers(realm))
    except base.ApiError as e:
        response = _page(e.status, "Outlook", [e.message])
        if e.status == 401:
            response.headers["WWW-Authenticate"] = f'Basic realm="{realm}", charset="UTF-8"'
    outlook = request.app[OUTLOOK]
    authority = urlsplit(outlook.authority_url)
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
        f"form-action 'self' {authority.scheme}://{authority.netloc}"
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


async def _agent(request: web.Request) -> tuple[str, int]:
    """(login, agent id) of the logged-in agent."""
    login = await base.login_of(request)
    ctx = base.context(request)

    def read(conn: Connection) -> int:
        found = scheduling.agent_by_login(conn, login)
        if found is None:
            raise base.ApiError(403, "forbidden", "ce compte n'est pas celui d'un agent")
        return int(found["id"])

    return login, await ctx.run(ctx.read, read)


def _token(outlook: Outlook, login: str) -> str:
    return outlook.box.tag(f"outlook-form\0{login}")


async def _check_form(request: web.Request, login: str) -> None:
    form = await request.post()
    sent = str(form.get("csrf", ""))
    if not hmac.compare_digest(sent, _token(request.app[OUTLOOK], login)):
        raise base.ApiError(
            403, "forbidden", "formulaire expiré ou venu d'ailleurs : rechargez la page"
        )


async def show(request: web.Request) -> web.Response:
    outlook = request.app[OUTLOOK]
    login, agent_id = await _agent(request)
    ctx = base.context(request)
    found = await ctx.run(ctx.read, lambda conn: repository.delegation(conn, agent_id))
    token = _token(outlook, login)
    if outlook.tokens is None:
        lines = ["La connexion d'un Outlook personnel n'est pas configurée sur ce serveur."]
        return _page(200, "Outlook", lines)
    if found is None:
        lines = [
            "Votre Outlook n'est pas connecté : vos RDV y sont envoyés par la connexion de "
            "votre organisation s'il y en a une, sinon pas du tout.",
        ]
        return _page(200, "Outlook", lines, _form("/connect", "Connecter Outlook", token))
    if found["state"] == repository.OK:
        lines = [f"Vos RDV sont envoyés dans l'Outlook de {found['account']}."]
    else:
        lines = [
            f"La connexion à l'Outlook de {found['account']} est interrompue "
            f"({found['broken_reason'] or 'autorisation expirée'}) : rien n'y est plus envoyé.",
            "Connectez-le de nouveau, ou déconnectez-le.",
        ]
    forms = _form("/connect", "Connecter Outlook", token) + _form(
        "/disconnect", "Déconnecter", token
    )
    return _page(200, "Outlook", lines, forms)


async def connect(request: web.Request) -> web.Response:
    outlook = request.app[OUTLOOK]
    login, agent_id = await _agent(request)
    await _check_form(request, login)
    if outlook.tokens is None:
        raise base.ApiError(503, "m365-not-configured", "connexion Outlook non configurée")
    try:
        flow = await base.context(request).run(outlook.tokens.start, outlook.redirect_uri)
    except Unavailable:
        raise base.ApiError(503, "unavailable", "Microsoft ne répond pas : réessayez") from None
    sealed = outlook.box.seal(json.dumps({"agent_id": agent_id, "flow": flow}))
    response = _see_other(flow["auth_uri"])
    response.set_cookie(
        COOKIE,
        sealed,
        max_age=FLOW_TTL_S,
        path=PREFIX + "/callback",
        secure=outlook.base_url.startswith("https://"),
        httponly=True,
        samesite="Lax",
    )
    return response


async def callback(request: web.Request) -> web.Response:
    """Microsoft's answer: the flow started in this browser, for this agent,
    is finished with msal (``state`` and nonce checked, the code redeemed
    with the PKCE verifier); the refresh token is kept sealed."""
    outlook = request.app[OUTLOOK]
    _, agent_id = await _agent(request)
    if outlook.tokens is None:
        raise base.ApiError(503, "m365-not-configured", "connexion Outlook non configurée")
    try:
        started = json.loads(outlook.box.open(request.cookies.get(COOKIE, ""), FLOW_TTL_S))
    except (SecretError, ValueError):
        raise base.ApiError(
            400, "invalid-flow", "aucune connexion en cours dans ce navigateur (ou expirée)"
        ) from None
    if started.get("agent_id") != agent_id:
        raise base.ApiError(403, "forbidden", "cette connexion a été commencée par un autre agent")
    ctx = base.context(request)
    try:
        granted = await ctx.run(outlook.tokens.finish, started["flow"], dict(request.query))
    except FlowError:
        raise base.ApiError(
            400, "invalid-flow", "réponse sans rapport avec cette connexion"
        ) from None
    except Refused as e:
        log.info("Outlook connection of agent %s refused: %s", agent_id, str(e)[:60])
        raise base.ApiError(403, "refused", "Microsoft a refusé la connexion") from None
    except Unavailable:
        raise base.ApiError(503, "unavailable", "Microsoft ne répond pas : réessayez") from None
    if not granted.account or not granted.refresh_token:
        raise base.ApiError(502, "incomplete", "Microsoft n'a pas donné de jeton durable")
    sealed = outlook.box.seal(granted.refresh_token)

    def write(conn: Connection) -> None:
        repository.set_delegation(conn, agent_id, granted.account, sealed, now_ms())

    await ctx.run(ctx.write, write)
    outlook.tokens.forget(agent_id)
    response = _see_other(PREFIX + "/")
    response.del_cookie(COOKIE, path=PREFIX + "/callback")
    return response


async def disconnect(request: web.Request) -> web.Response:
    outlook = request.app[OUTLOOK]
    login, agent_id = await _agent(request)
    await _check_form(request, login)
    ctx = base.context(request)
    await ctx.run(ctx.write, lambda conn: repository.delete_delegation(conn, agent_id, now_ms()))
    if outlook.tokens is not None:
        outlook.tokens.forget(agent_id)
    return _see_other(PREFIX + "/")


def pages(ctx: base.ApiContext, outlook: Outlook) -> web.Application:
    """The sub-application mounted at ``PREFIX``."""
    app = web.Application(middlewares=[_errors])
    app[base.CONTEXT] = ctx
    app[OUTLOOK] = outlook
    app.router.add_get("/", show)
    app.router.add_post("/connect", connect)
    app.router.add_get("/callback", callback)
    app.router.add_post("/disconnect", disconnect)
    return app
