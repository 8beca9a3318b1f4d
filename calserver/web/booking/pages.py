"""The public booking journey's pages (server-rendered, no JavaScript).

Service → motif → lieu (``public_office``) → a week of créneaux → the motif's
instructions → identity → email check (``confirm``) → confirmation.  Every
step reads only what the organisation offers online (``offer``); the URL
carries ids, a day and a slot's local time, never anything personal.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import Connection

from calserver.web import week
from calserver.web.booking import offer as offers
from calserver.web.booking import params
from calserver.web.booking.offer import MODALITIES, Offer
from calserver.web.render import page
from calserver.web.site import context
from calserver.web.throttle import check
from storage import scheduling

NOT_OFFERED = (
    "Ce motif n'est pas proposé en ligne. Contactez directement le service "
    "pour prendre rendez-vous."
)


def load_offer(conn: Connection, slug: str, now: datetime) -> Offer:
    organisation = scheduling.organisation_by_slug(conn, slug)
    if organisation is None:
        raise web.HTTPNotFound()
    return offers.offer_of(conn, organisation, now)


def base_values(offer: Offer) -> dict:
    organisation = offer.organisation
    return {
        "organisation": organisation,
        "slug": organisation["slug"],
        "modalities": MODALITIES,
        "zone": ZoneInfo(organisation["time_zone"]),
    }


def chosen_motif(offer: Offer, motif_id: int) -> dict:
    motif = offer.motif(motif_id)
    if motif is None:
        raise web.HTTPNotFound()
    return motif


def chosen_lieu(offer: Offer, motif: dict, raw: str | None) -> dict | None:
    """The lieu of a ``public_office`` motif (required, one it is offered
    at); none for the other modalities."""
    lieu_id = params.optional_id(raw)
    if motif["location_type"] != "public_office":
        return None
    lieu = offer.lieu(motif["id"], lieu_id)
    if lieu is None:
        raise web.HTTPNotFound()
    return lieu


async def organisation_page(request: web.Request) -> web.Response:
    slug = params.slug(request)
    ctx = context(request)
    now = offers.utc_now()
    offer = await ctx.run(ctx.read, lambda conn: load_offer(conn, slug, now))
    return page(
        request,
        "booking/organisation.html",
        {**base_values(offer), "services": offer.services, "title": "Choisissez un service"},
    )


async def service_page(request: web.Request) -> web.Response:
    slug, service_id = params.slug(request), params.path_id(request, "service")
    ctx = context(request)
    now = offers.utc_now()
    offer = await ctx.run(ctx.read, lambda conn: load_offer(conn, slug, now))
    service = offer.service(service_id)
    if service is None:
        raise web.HTTPNotFound()
    return page(
        request,
        "booking/service.html",
        {
            **base_values(offer),
            "service": service,
            "motifs": offer.motifs_of(service_id),
            "title": "Choisissez le motif de votre rendez-vous",
        },
    )


async def motif_page(request: web.Request) -> web.Response:
    """The lieux of a motif received at a lieu, each with its next
    availability; the other modalities go straight to their créneaux."""
    slug, motif_id = params.slug(request), params.path_id(request, "motif")
    ctx = context(request)
    check(request, ctx.limits.searches)
    now = offers.utc_now()

    def read(conn: Connection) -> tuple[Offer, dict, list[tuple[dict, object]]]:
        offer = load_offer(conn, slug, now)
        motif = chosen_motif(offer, motif_id)
        lieux = [
            (lieu, offers.next_slot(conn, motif, lieu["id"], now))
            for lieu in offer.lieux.get(motif_id, [])
        ]
        return offer, motif, lieux

    offer, motif, lieux = await ctx.search(ctx.read, read)
    if motif["location_type"] != "public_office":
        raise web.HTTPSeeOther(f"/prendre-rdv/{slug}/motifs/{motif_id}/creneaux")
    return page(
        request,
        "booking/lieux.html",
        {
            **base_values(offer),
            "motif": motif,
            "service": offer.service(motif["service_id"]),
            "lieux": lieux,
            "title": "Choisissez un lieu",
        },
    )


async def creneaux_page(request: web.Request) -> web.Response:
    slug, motif_id = params.slug(request), params.path_id(request, "motif")
    wanted_day = params.day(request.query.get("semaine"))
    raw_lieu = request.query.get("lieu")
    ctx = context(request)
    check(request, ctx.limits.searches)
    now = offers.utc_now()

    def read(conn: Connection) -> dict:
        offer = load_offer(conn, slug, now)
        motif = chosen_motif(offer, motif_id)
        lieu = chosen_lieu(offer, motif, raw_lieu)
        zone = offer.organisation["time_zone"]
        span = week.window(wanted_day, now, offers.horizon(motif, now), zone)
        lieu_id = lieu["id"] if lieu else None
        found = offers.week(conn, motif, lieu_id, span.start, now)
        lieu_query = params.lieu_query(lieu_id)
        rdv_path = f"/prendre-rdv/{slug}/motifs/{motif_id}/rdv?{lieu_query}debut="
        return {
            **base_values(offer),
            "motif": motif,
            "service": offer.service(motif["service_id"]),
            "lieu": lieu,
            "week": week.laid_out(
                span, found, lambda after: offers.next_slot(conn, motif, lieu_id, now, after)
            ),
            "week_href": lambda day: f"?{lieu_query}semaine={day}",
            "slot_href": lambda c: rdv_path + params.slot_text(c.start, zone),
            "title": "Choisissez un créneau",
        }

    return page(request, "booking/creneaux.html", await ctx.search(ctx.read, read))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/{slug}", organisation_page)
    app.router.add_get("/{slug}/services/{service}", service_page)
    app.router.add_get("/{slug}/motifs/{motif}", motif_page)
    app.router.add_get("/{slug}/motifs/{motif}/creneaux", creneaux_page)
