"""The "Infos et annulation" pages behind ``/r/<item id>/<token>``.

GET shows the letters form (the first three letters of the usager's last
name), or the RDV once this browser session has typed them for this link;
POST checks the letters, rate-limited per address and per link
(``calserver.web.throttle``: 429 with a French page).  The session then holds
which RDV and usager it opened and a digest of the link (ids only, never a
name), for ``VERIFIED_FOR``: one RDV at a time, and only through the link it
was opened with.  An unknown or expired link is a 404, like an RDV the usager
is no longer on.  While the session holds, the page keeps working after the
notification of the usager's own change has renewed the link's token.

Cancelling and moving are forms (CSRF, from the shared session middleware)
after a confirmation step; the writes are ``calserver.usager_rdv``'s, through
the one booking check.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import Connection

from booking.rules import USAGER_REFUSALS, BookingRefused, Why
from calserver import usager_rdv
from calserver.usager_rdv import UsagerRdv
from calserver.web import week
from calserver.web.booking import params
from calserver.web.booking.offer import MODALITIES
from calserver.web.errors import PageError
from calserver.web.render import page
from calserver.web.sessions import session_of
from calserver.web.site import context
from calserver.web.throttle import check
from storage.notifications import TOKEN_ALPHABET, TOKEN_LENGTH

VERIFIED = "usager_rdv"
VERIFIED_FOR = 30 * 60
TOKEN = re.compile(f"^[{re.escape(TOKEN_ALPHABET)}]{{{TOKEN_LENGTH}}}$")
STATUS_TEXT = {
    "unknown": "Confirmé",
    "seen": "Honoré",
    "noshow": "Absence non excusée",
    "excused": "Annulé à votre demande",
    "revoked": "Annulé par le service",
}
NOTICES = {
    "annule": "Votre rendez-vous est annulé. Une confirmation vous est envoyée par courriel.",
    "deplace": "Votre rendez-vous est déplacé. Une confirmation vous est envoyée.",
}
SLOT_GONE = "Ce créneau n'est plus disponible. Choisissez-en un autre."
# What the booking check's refusals of a move mean to a usager (the codes of
# the usager's own rules already carry French messages).
MOVE_REFUSALS = {
    "slot-unavailable": "Ce créneau vient d'être pris par quelqu'un d'autre. "
    "Choisissez-en un autre.",
}


@dataclass(frozen=True)
class Link:
    item_id: int
    token: str
    usager_id: int

    @property
    def path(self) -> str:
        return f"/r/{self.item_id}/{self.token}"


def _digest(token: str) -> str:
    return hashlib.sha256(f"rdv-link:{token}".encode()).hexdigest()[:32]


def _now() -> datetime:
    return datetime.now(UTC)


def _path(request: web.Request) -> tuple[int, str]:
    item_id = params.path_id(request, "item")
    token = request.match_info["token"].upper()
    if not TOKEN.match(token):
        raise web.HTTPNotFound()
    return item_id, token


def _session_usager(request: web.Request, item_id: int, token: str) -> int | None:
    """The usager this session verified for this link, while it holds."""
    held = session_of(request).get(VERIFIED)
    if not isinstance(held, dict):
        return None
    if held.get("item") != item_id or held.get("link") != _digest(token):
        return None
    if not 0 <= time.time() - float(held.get("at", 0)) <= VERIFIED_FOR:
        return None
    usager = held.get("usager")
    return usager if isinstance(usager, int) else None


async def _opened(request: web.Request) -> tuple[Link, bool]:
    """The link and whether this session has typed its letters; 404 for a
    link that opens nothing (each such try counts against the address)."""
    item_id, token = _path(request)
    verified = _session_usager(request, item_id, token)
    if verified is not None:
        return Link(item_id, token, verified), True
    ctx = context(request)
    now = _now()
    usager = await ctx.run(ctx.read, lambda c: usager_rdv.link_usager(c, item_id, token, now))
    if usager is None:
        check(request, ctx.limits.guesses)
        raise web.HTTPNotFound()
    return Link(item_id, token, usager), False


async def _verified(request: web.Request) -> Link:
    """The link of a session that typed its letters, else back to the form."""
    link, verified = await _opened(request)
    if not verified:
        raise web.HTTPSeeOther(link.path)
    return link


async def _rdv(request: web.Request, link: Link) -> UsagerRdv:
    ctx = context(request)
    now = _now()
    rdv = await ctx.run(
        ctx.read, lambda c: usager_rdv.usager_rdv(c, link.item_id, link.usager_id, now)
    )
    if rdv is None:
        raise web.HTTPNotFound()
    return rdv


def _values(link: Link, rdv: UsagerRdv, title: str) -> dict:
    zone = ZoneInfo(rdv.zone)
    return {
        "title": title,
        "here": link.path,
        "rdv": rdv,
        "organisation": rdv.organisation,
        "modalities": MODALITIES,
        "minutes": int((rdv.ends_at - rdv.starts_at).total_seconds() // 60),
        "status_text": STATUS_TEXT.get(rdv.status, rdv.status),
        "cancelled": rdv.status in ("excused", "revoked"),
        "local": lambda moment: moment.astimezone(zone),
        "slot_text": lambda moment: params.slot_text(moment, rdv.zone),
    }


async def link_page(request: web.Request) -> web.Response:
    link, verified = await _opened(request)
    if not verified:
        return page(
            request,
            "selfservice/letters.html",
            {"title": "Accéder à votre rendez-vous", "here": link.path, "wrong": False},
        )
    rdv = await _rdv(request, link)
    values = _values(link, rdv, "Votre rendez-vous")
    values["notice"] = NOTICES.get(request.query.get("fait", ""))
    return page(request, "selfservice/summary.html", values)


async def letters(request: web.Request) -> web.Response:
    item_id, token = _path(request)
    ctx = context(request)
    # Per address and per link: a link is guessed at from many addresses.
    check(request, ctx.limits.guesses, ("rdv-link", item_id))
    link, _ = await _opened(request)
    typed = params.text(str((await request.post()).get("lettres", "")))[:40]
    right = await ctx.run(ctx.read, lambda c: usager_rdv.letters_right(c, link.usager_id, typed))
    if not right:
        return page(
            request,
            "selfservice/letters.html",
            {"title": "Accéder à votre rendez-vous", "here": link.path, "wrong": True},
            status=422,
        )
    session_of(request)[VERIFIED] = {
        "item": item_id,
        "usager": link.usager_id,
        "link": _digest(token),
        "at": int(time.time()),
    }
    raise web.HTTPSeeOther(link.path)


async def cancel_page(request: web.Request) -> web.Response:
    link = await _verified(request)
    rdv = await _rdv(request, link)
    if rdv.cancel_refusal is not None:
        raise PageError(422, rdv.cancel_refusal)
    return page(request, "selfservice/cancel.html", _values(link, rdv, "Annuler le rendez-vous"))


def _refusal(refused: BookingRefused) -> PageError:
    if refused.why is Why.TAKEN:
        return PageError(409, MOVE_REFUSALS.get(refused.code, SLOT_GONE))
    if refused.why is Why.MISSING:
        return PageError(404, "Ce rendez-vous n'existe plus.")
    return PageError(422, refused.message if refused.code in USAGER_REFUSALS else SLOT_GONE)


async def cancel(request: web.Request) -> web.Response:
    link = await _verified(request)
    ctx = context(request)
    now = _now()

    def write(conn: Connection) -> None:
        usager_rdv.cancel(conn, link.item_id, link.usager_id, now)

    try:
        await ctx.writing(ctx.write, write)
    except BookingRefused as refused:
        raise _refusal(refused) from None
    except LookupError:
        raise web.HTTPNotFound() from None
    raise web.HTTPSeeOther(f"{link.path}?fait=annule")


async def move_page(request: web.Request) -> web.Response:
    """A week of the slots the RDV may move to, with next/previous week and
    the next availability when the week has none."""
    link = await _verified(request)
    ctx = context(request)
    check(request, ctx.limits.searches)
    rdv = await _rdv(request, link)
    if rdv.move_refusal is not None:
        raise PageError(422, rdv.move_refusal)
    now = _now()
    span = week.window(params.day(request.query.get("semaine")), now, rdv.horizon, rdv.zone)

    def read(conn: Connection) -> week.Week:
        found = usager_rdv.creneaux(conn, rdv, span.start, span.end, now)
        return week.laid_out(
            span, found, lambda after: usager_rdv.next_creneau(conn, rdv, after, now)
        )

    values = _values(link, rdv, "Choisissez un nouveau créneau")
    values.update(
        week=await ctx.search(ctx.read, read),
        week_href=lambda day: f"{link.path}/deplacer?semaine={day}",
        slot_href=lambda c: (
            f"{link.path}/deplacer/confirmer?creneau=" + params.slot_text(c.start, rdv.zone)
        ),
    )
    return page(request, "selfservice/move.html", values)


async def _move_target(request: web.Request, raw: str | None) -> tuple[Link, UsagerRdv, datetime]:
    link = await _verified(request)
    rdv = await _rdv(request, link)
    if rdv.move_refusal is not None:
        raise PageError(422, rdv.move_refusal)
    return link, rdv, params.slot(raw, rdv.zone).astimezone(UTC)


async def move_confirm_page(request: web.Request) -> web.Response:
    link, rdv, start = await _move_target(request, request.query.get("creneau"))
    values = _values(link, rdv, "Confirmer le nouveau créneau")
    values.update(start=start, taken=None)
    return page(request, "selfservice/move_confirm.html", values)


async def move(request: web.Request) -> web.Response:
    form = await request.post()
    raw = form.get("creneau")
    link, rdv, start = await _move_target(request, raw if isinstance(raw, str) else None)
    ctx = context(request)
    now = _now()

    def candidates(conn: Connection) -> list[int]:
        return usager_rdv.move_candidates(conn, link.item_id, link.usager_id, start, now)

    try:
        agent_ids = await ctx.run(ctx.read, candidates)

        def write(conn: Connection) -> None:
            usager_rdv.move(conn, link.item_id, link.usager_id, start, now, agent_ids)

        await ctx.writing(ctx.write, write)
    except BookingRefused as refused:
        if refused.code in ("slot-unavailable", "booking-delay", "outside-plage", "agent-busy"):
            values = _values(link, rdv, "Confirmer le nouveau créneau")
            values.update(start=start, taken=MOVE_REFUSALS.get(refused.code, SLOT_GONE))
            status = 409 if refused.why is Why.TAKEN else 422
            return page(request, "selfservice/move_confirm.html", values, status=status)
        raise _refusal(refused) from None
    except LookupError:
        raise web.HTTPNotFound() from None
    raise web.HTTPSeeOther(f"{link.path}?fait=deplace")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/{item}/{token}", link_page)
    app.router.add_post("/{item}/{token}", letters)
    app.router.add_get("/{item}/{token}/annuler", cancel_page)
    app.router.add_post("/{item}/{token}/annuler", cancel)
    app.router.add_get("/{item}/{token}/deplacer", move_page)
    app.router.add_get("/{item}/{token}/deplacer/confirmer", move_confirm_page)
    app.router.add_post("/{item}/{token}/deplacer/confirmer", move)
