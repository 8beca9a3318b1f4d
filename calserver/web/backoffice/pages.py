"""The back office's pages: an agent's login form and the RDV page every
feed event, Outlook event and agent notification links to,
``/backoffice/rdvs/<public id>``.

Login goes through the one gate of CalDAV and the API
(``AuthGate.check_pair``: its throttle, its verification queue, its 429) and
the password check of ``plugins.auth``.  The session (the pages' signed
cookie, made anew at login) then holds the agent's id and a digest of its
stored password hash, never its login or password: a password reset or a
deactivation ends every session at its next request; it lasts at most
``LOGGED_IN_FOR``.

The RDV page shows what the agent may read of the agenda holding the RDV
(the CalDAV rights, as the API reads them: ``ApiContext.agenda_rights``), its
usagers' details included; anyone without that right gets the same 404 as
for an RDV that does not exist.  The status form (CSRF) changes the RDV
through the API's own change (``calserver.api.agendas.change_rdv``): the
same rights, the same booking check, the same notifications.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import Connection

from booking import events
from booking.model import RDV_STATUSES
from booking.rules import BookingRefused, Why
from calserver.api import schemas
from calserver.api.agendas import change_rdv, readable_rdv
from calserver.api.base import ApiContext, ApiError
from calserver.auth_gate import AuthGate, AuthRefused
from calserver.web.booking import params
from calserver.web.booking.offer import MODALITIES
from calserver.web.errors import PageError
from calserver.web.render import page
from calserver.web.sessions import restart_session, session_of
from calserver.web.site import context
from storage import agenda_index, agents, scheduling

API_CONTEXT = web.AppKey("backoffice_api_context", ApiContext)
GATE = web.AppKey("backoffice_gate", AuthGate)
AGENT = "agent"
LOGGED_IN_FOR = 12 * 3600
PREFIX = "/backoffice"
STATUS_LABELS = {
    "unknown": "À venir / à renseigner",
    "seen": "Présent (vu)",
    "noshow": "Absent non excusé (lapin)",
    "excused": "Annulé par l'usager",
    "revoked": "Annulé par le service",
}
WRONG = "Identifiant ou mot de passe incorrect."


@dataclass(frozen=True)
class Agent:
    id: int
    login: str
    display_name: str


def _password_digest(stored: str | None) -> str:
    return hashlib.sha256(f"backoffice:{stored}".encode()).hexdigest()[:32]


def _logged_in(conn: Connection, held: Any) -> Agent | None:
    """The agent of a session, while its password and login still hold."""
    if not isinstance(held, dict) or not isinstance(held.get("id"), int):
        return None
    if not 0 <= time.time() - float(held.get("at", 0)) <= LOGGED_IN_FOR:
        return None
    agent = scheduling.agent(conn, held["id"])
    if agent is None:
        return None
    stored = agents.password_hash(conn, agent["login"])
    if stored is None or held.get("pw") != _password_digest(stored):
        return None
    return Agent(agent["id"], agent["login"], agent["display_name"] or agent["login"])


async def _agent(request: web.Request) -> Agent:
    """The logged-in agent, else to the login form (back here afterwards)."""
    ctx = context(request)
    held = session_of(request).get(AGENT)
    found = await ctx.run(ctx.read, lambda conn: _logged_in(conn, held)) if held else None
    if found is None:
        raise web.HTTPSeeOther(f"{PREFIX}/login?suite={quote(request.path)}")
    return found


def _next(raw: object) -> str:
    """Where to go after login: a back-office path only (no open redirect)."""
    if (
        isinstance(raw, str)
        and raw.startswith(f"{PREFIX}/")
        and "//" not in raw
        and "\\" not in raw
    ):
        return raw
    return f"{PREFIX}/"


def _login_page(request: web.Request, suite: str, error: str | None, status: int) -> web.Response:
    return page(
        request,
        "backoffice/login.html",
        {"title": "Connexion agent", "suite": suite, "error": error},
        status=status,
    )


async def login_form(request: web.Request) -> web.Response:
    return _login_page(request, _next(request.query.get("suite")), None, 200)


async def login(request: web.Request) -> web.Response:
    form = await request.post()
    suite = _next(form.get("suite"))
    login_ = params.text(str(form.get("identifiant", "")))[:100]
    password = str(form.get("mot_de_passe", ""))[:1024]
    if not login_ or not password:
        return _login_page(request, suite, WRONG, 422)
    gate = request.app[GATE]
    try:
        await gate.check_pair(login_, password, request.remote or "")
    except AuthRefused as refused:
        if refused.status == 429:
            raise PageError(
                429,
                "Trop de mots de passe erronés depuis cette adresse. Réessayez plus tard.",
                retry_after=refused.retry_after,
            ) from None
        if refused.status == 503:
            raise PageError(
                503, "Trop de connexions en cours. Réessayez dans un instant."
            ) from None
        return _login_page(request, suite, WRONG, 422)
    ctx = context(request)

    def read(conn: Connection) -> dict | None:
        agent = scheduling.agent_by_login(conn, login_)
        stored = agents.password_hash(conn, login_)
        if agent is None or stored is None:
            return None
        return {"id": agent["id"], "pw": _password_digest(stored), "at": int(time.time())}

    # The gate may have let remembered credentials through: confirm them.
    confirmed = await ctx.run(gate.auth.verify, login_, password)
    held = await ctx.run(ctx.read, read) if confirmed else None
    if held is None:
        return _login_page(request, suite, WRONG, 422)
    restart_session(request, {AGENT: held})
    raise web.HTTPSeeOther(suite)


async def logout(request: web.Request) -> web.Response:
    restart_session(request, {})
    raise web.HTTPSeeOther(f"{PREFIX}/login?fait=deconnecte")


async def home(request: web.Request) -> web.Response:
    agent = await _agent(request)
    return page(request, "backoffice/home.html", {"title": "Espace agent", "agent": agent})


def _rdv_view(api: ApiContext, conn: Connection, agent: Agent, public: str) -> dict:
    """What the RDV page shows, or 404 (no such RDV, or not readable)."""
    placed = agenda_index.placed_rdv(conn, public=public)
    if placed is None:
        raise web.HTTPNotFound()
    try:
        _, _, text = readable_rdv(api, conn, agent.login, placed.event.agent_id, placed.event.uid)
    except ApiError:
        raise web.HTTPNotFound() from None
    motif = scheduling.motif(conn, placed.event.motif_id) if placed.event.motif_id else None
    organisation = scheduling.organisation(conn, motif["organisation_id"]) if motif else None
    zone = ZoneInfo(organisation["time_zone"] if organisation else "Europe/Paris")
    parsed = events.parse(text, zone.key)
    lieu = scheduling.lieu(conn, parsed.lieu_id) if parsed.lieu_id is not None else None
    owner = scheduling.agent(conn, placed.event.agent_id)
    usagers = [u for u in (scheduling.usager(conn, i) for i in parsed.usager_ids) if u]
    writable = "w" in api.agenda_rights(agent.login, placed.owner, "rdv")
    return {
        "public_id": public,
        "uid": placed.event.uid,
        "agent_id": placed.event.agent_id,
        "motif": motif,
        "lieu": lieu,
        "owner": owner,
        "usagers": usagers,
        "status": parsed.rdv_status,
        "start": parsed.start.astimezone(zone),
        "end": parsed.end.astimezone(zone),
        "writable": writable,
    }


async def rdv_page(request: web.Request) -> web.Response:
    agent = await _agent(request)
    public = _public_id(request)
    ctx = context(request)
    api = request.app[API_CONTEXT]
    view = await ctx.run(ctx.read, lambda conn: _rdv_view(api, conn, agent, public))
    notice = "Statut enregistré." if request.query.get("fait") == "statut" else None
    return page(
        request,
        "backoffice/rdv.html",
        {
            "title": "Rendez-vous",
            "agent": agent,
            "rdv": view,
            "statuses": [(s, STATUS_LABELS[s]) for s in RDV_STATUSES],
            "status_labels": STATUS_LABELS,
            "modalities": MODALITIES,
            "notice": notice,
        },
    )


def _public_id(request: web.Request) -> str:
    raw = request.match_info["public"]
    if len(raw) != 36 or not all(c in "0123456789abcdef-" for c in raw):
        raise web.HTTPNotFound()
    return raw


async def change_status(request: web.Request) -> web.Response:
    agent = await _agent(request)
    public = _public_id(request)
    status = (await request.post()).get("statut")
    if status not in RDV_STATUSES:
        raise PageError(422, "Choisissez un des statuts proposés.")
    ctx = context(request)
    api = request.app[API_CONTEXT]

    def write(conn: Connection) -> None:
        placed = agenda_index.placed_rdv(conn, public=public)
        if placed is None:
            raise web.HTTPNotFound()
        change = schemas.RdvPatch(status=str(status))
        try:
            change_rdv(api, conn, agent.login, placed.event.agent_id, placed.event.uid, change)
        except ApiError as refused:
            if refused.status in (403, 404):
                raise web.HTTPNotFound() from None
            raise PageError(422, refused.message) from None

    try:
        await ctx.writing(ctx.write, write)
    except BookingRefused as refused:
        status_code = 409 if refused.why is Why.TAKEN else 422
        raise PageError(status_code, refused.message) from None
    raise web.HTTPSeeOther(f"{PREFIX}/rdvs/{public}?fait=statut")


def add_routes(app: web.Application, api: ApiContext, gate: AuthGate) -> None:
    app[API_CONTEXT] = api
    app[GATE] = gate
    app.router.add_get("/", home)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/rdvs/{public}", rdv_page)
    app.router.add_post("/rdvs/{public}/statut", change_status)
