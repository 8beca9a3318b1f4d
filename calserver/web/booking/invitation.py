"""Invitations: another system's link (``/prendre-rdv/<slug>/invitation/<token>``)
lets its usager book without typing an identity or confirming an email.

Arriving with the link keeps the invitation in the browser's session and
leads to the journey at its motif (or its service, or the organisation); the
identity step then shows who is invited and books at once.  The RDV carries
the invitation (``X-CALSERVER-INVITATION``, and ``invitation`` in webhooks).
An invitation books once, until it expires; what it names (motif, service,
lieu) bounds what it books.  The booking check is the usagers' one.
"""

from __future__ import annotations

import hashlib
import time

from aiohttp import web
from sqlalchemy import Connection

from booking.rules import BookingRefused
from calserver.web.booking import offer as offers
from calserver.web.booking import params
from calserver.web.booking.book import SlotTaken, book
from calserver.web.booking.confirm import (
    INVITATION_KEY,
    RDV_KEY,
    REFUSED,
    active_invitation,
    choice_of,
    taken_page,
)
from calserver.web.errors import PageError
from calserver.web.sessions import session_of
from calserver.web.site import context
from storage import public_booking, scheduling

EXPIRED = "Cette invitation n'est plus valable. Contactez le service qui vous l'a envoyée."
USED = (
    "Vous avez déjà pris rendez-vous avec cette invitation. "
    "Retrouvez-le dans le courriel de confirmation."
)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_link(base_url: str, slug: str, token: str) -> str:
    return f"{base_url}/prendre-rdv/{slug}/invitation/{token}"


def usable(invitation: dict, now_s: float) -> None:
    if invitation["rdv_uid"]:
        raise PageError(409, USED)
    if invitation["expires_at"] < now_s:
        raise PageError(410, EXPIRED)


async def arrive(request: web.Request) -> web.Response:
    slug, token = params.slug(request), request.match_info["token"]
    ctx = context(request)

    def read(conn: Connection) -> tuple[dict, dict]:
        organisation = scheduling.organisation_by_slug(conn, slug)
        found = (
            public_booking.invitation_by_token(conn, token_hash(token))
            if len(token) < 100
            else None
        )
        if organisation is None or found is None or found["organisation_id"] != organisation["id"]:
            raise web.HTTPNotFound()
        return organisation, found

    organisation, invitation = await ctx.run(ctx.read, read)
    usable(invitation, time.time())
    session_of(request)[INVITATION_KEY] = [invitation["id"], organisation["id"]]
    if invitation["motif_id"]:
        target = f"/prendre-rdv/{slug}/motifs/{invitation['motif_id']}"
    elif invitation["service_id"]:
        target = f"/prendre-rdv/{slug}/services/{invitation['service_id']}"
    else:
        target = f"/prendre-rdv/{slug}"
    raise web.HTTPSeeOther(target)


async def book_invited(request: web.Request) -> web.Response:
    ctx = context(request)
    form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    now = offers.utc_now()

    def write(conn: Connection):  # type: ignore[no-untyped-def]
        choice = choice_of(conn, request, form, now)
        organisation = choice.offer.organisation
        invitation_id = active_invitation(request, organisation["id"])
        if invitation_id is None:
            raise web.HTTPNotFound()
        invitation = public_booking.invitation(conn, invitation_id, lock=True)
        if invitation is None:
            raise web.HTTPNotFound()
        usable(invitation, now.timestamp())
        lieu_id = choice.lieu["id"] if choice.lieu else None
        if (
            (invitation["motif_id"] and invitation["motif_id"] != choice.motif["id"])
            or (invitation["service_id"] and invitation["service_id"] != choice.motif["service_id"])
            or (invitation["lieu_id"] and lieu_id and invitation["lieu_id"] != lieu_id)
        ):
            raise PageError(403, "Cette invitation ne permet pas de prendre ce rendez-vous.")
        usager = scheduling.usager(conn, invitation["usager_id"])
        if usager is None:
            raise web.HTTPNotFound()
        try:
            with conn.begin_nested():
                booked = book(
                    conn, organisation, choice.motif, choice.lieu, choice.start, usager, now,
                    invitation_id=invitation["id"],
                )  # fmt: skip
        except SlotTaken:
            nearest = offers.nearest(conn, choice.motif, lieu_id, choice.start, now)
            return choice, None, nearest
        except BookingRefused:
            raise PageError(422, REFUSED) from None
        public_booking.set_invitation_booked(conn, invitation["id"], booked.agent_id, booked.uid)
        return choice, booked, []

    choice, booked, nearest = await ctx.writing(ctx.write, write)
    if booked is None:
        values = {**choice.values(), "title": "Ce créneau n'est plus disponible"}
        return taken_page(request, values, nearest, post_to=None)
    session = session_of(request)
    session[RDV_KEY] = [booked.agent_id, booked.uid]
    session.pop(INVITATION_KEY)
    raise web.HTTPSeeOther(f"/prendre-rdv/{choice.offer.organisation['slug']}/rendez-vous")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/{slug}/invitation/{token}", arrive)
    app.router.add_post("/{slug}/motifs/{motif}/invitation", book_invited)
