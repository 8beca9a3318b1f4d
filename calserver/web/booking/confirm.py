"""The journey after the créneau: the motif's instructions, the usager's
identity, the email check (the link, or the 6-digit code typed in the same
browser), another slot when the chosen one was taken meanwhile, then the
confirmation page and its ``.ics``.

A booking request (``storage.public_booking``) holds the identity until the
email is confirmed, 30 minutes at most; it is named in URLs by a random id,
its code and link are kept as digests, and it remembers the browser session
that asked (only that session may type the code).  Confirming books through
``book.book`` in one transaction that first takes the request's row: a
double click books once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
from aiohttp import web
from sqlalchemy import Connection

from booking import events
from booking.agenda import rdv_agenda
from booking.rules import BookingRefused
from calserver.api import schemas
from calserver.web.booking import mail, params
from calserver.web.booking import offer as offers
from calserver.web.booking.book import Identity, SlotTaken, book, slot_agent, usager_for
from calserver.web.booking.pages import base_values, chosen_lieu, chosen_motif, load_offer
from calserver.web.errors import PageError
from calserver.web.render import page
from calserver.web.sessions import keyed_digest, session_digest, session_of
from calserver.web.site import WebContext, context
from calserver.web.throttle import check, key_of
from notifications import ics, phones, render
from plugins import agenda_writer
from storage import agenda_index, public_booking, scheduling

VALID = timedelta(minutes=30)
MAX_CODE_ATTEMPTS = 5
REQUEST_PURPOSE = "booking-request"
RDV_KEY = "rdv"  # session: [agent id, UID] of the RDV just booked
VERIFIED_KEY = "verified"  # session: the request whose email was confirmed here
INVITATION_KEY = "invitation"  # session: [invitation id, organisation id]
REFUSED = (
    "Ce rendez-vous ne peut pas être pris en ligne. "
    "Choisissez un autre créneau ou contactez le service."
)
EXPIRED = (
    "Ce lien ou ce code n'est plus valable (30 minutes). "
    "Reprenez la prise de rendez-vous depuis le début : aucun rendez-vous n'a été réservé."
)


@dataclass(frozen=True)
class Choice:
    """A slot chosen on the page: motif, lieu and start, all offered."""

    offer: offers.Offer
    motif: dict
    lieu: dict | None
    start: datetime

    def values(self) -> dict:
        zone = self.offer.organisation["time_zone"]
        lieu_id = self.lieu["id"] if self.lieu else None
        debut = params.slot_text(self.start, zone)
        return {
            **base_values(self.offer),
            "motif": self.motif,
            "service": self.offer.service(self.motif["service_id"]),
            "lieu": self.lieu,
            "start": self.start.astimezone(ZoneInfo(zone)),
            "debut": debut,
            "slot_query": params.slot_query(lieu_id, self.start, zone),
            "lieu_query": params.lieu_query(lieu_id),
        }


def choice_of(conn: Connection, request: web.Request, form: dict, now: datetime) -> Choice:
    slug, motif_id = params.slug(request), params.path_id(request, "motif")
    offer = load_offer(conn, slug, now)
    motif = chosen_motif(offer, motif_id)
    lieu = chosen_lieu(offer, motif, form.get("lieu"))
    start = params.slot(form.get("debut"), offer.organisation["time_zone"])
    return Choice(offer, motif, lieu, start)


def taken_page(
    request: web.Request, values: dict, nearest: list, *, post_to: str | None
) -> web.Response:
    """The slot is gone: the nearest free ones, as buttons (a verified
    request books one at once) or links (back to the instructions)."""
    zone = ZoneInfo(values["organisation"]["time_zone"])
    slots = [(c.start.astimezone(zone), params.slot_text(c.start, str(zone))) for c in nearest]
    return page(
        request,
        "booking/taken.html",
        {
            **values,
            "nearest": slots,
            "post_to": post_to,
            "title": "Ce créneau n'est plus disponible",
        },
        status=409,
    )


async def _read_choice(request: web.Request, form: dict) -> tuple[Choice, bool, list]:
    """The choice, whether it is still offered, and the nearest slots if not."""
    ctx = context(request)
    now = offers.utc_now()

    def read(conn: Connection) -> tuple[Choice, bool, list]:
        choice = choice_of(conn, request, form, now)
        lieu_id = choice.lieu["id"] if choice.lieu else None
        if offers.offered_at(conn, choice.motif, lieu_id, choice.start, now):
            return choice, True, []
        return choice, False, offers.nearest(conn, choice.motif, lieu_id, choice.start, now)

    return await ctx.search(ctx.read, read)


async def instructions_page(request: web.Request) -> web.Response:
    """The slot and the motif's instructions before booking."""
    check(request, context(request).limits.searches)
    choice, offered, nearest = await _read_choice(request, dict(request.query))
    values = {**choice.values(), "title": "Votre rendez-vous"}
    if not offered:
        return taken_page(request, values, nearest, post_to=None)
    return page(request, "booking/instructions.html", values)


def active_invitation(request: web.Request, organisation_id: int) -> int | None:
    """The invitation this browser arrived with, for this organisation."""
    found = session_of(request).get(INVITATION_KEY)
    if isinstance(found, list) and len(found) == 2 and found[1] == organisation_id:
        return int(found[0])
    return None


async def identity_page(request: web.Request) -> web.Response:
    check(request, context(request).limits.searches)
    choice, offered, nearest = await _read_choice(request, dict(request.query))
    values = {**choice.values(), "title": "Vos coordonnées"}
    if not offered:
        return taken_page(request, values, nearest, post_to=None)
    invitation_id = active_invitation(request, choice.offer.organisation["id"])
    if invitation_id is not None:
        ctx = context(request)
        invited = await ctx.run(ctx.read, lambda conn: _invited_usager(conn, invitation_id))
        return page(request, "booking/invited.html", {**values, "usager": invited})
    return page(request, "booking/identity.html", {**values, "form": {}, "errors": {}})


def _invited_usager(conn: Connection, invitation_id: int) -> dict:
    invitation = public_booking.invitation(conn, invitation_id)
    usager = scheduling.usager(conn, invitation["usager_id"]) if invitation else None
    if usager is None:
        raise web.HTTPNotFound()
    return usager


class _IdentityForm(msgspec.Struct):
    first_name: schemas.Name
    last_name: schemas.Name
    email: schemas.UsagerEmail


FIELD_ERRORS = {
    "first_name": "Indiquez votre prénom.",
    "last_name": "Indiquez votre nom.",
    "email": "Indiquez une adresse électronique valide, par exemple nom@exemple.fr.",
    "phone": "Indiquez un numéro de téléphone valide, par exemple 06 12 34 56 78.",
    "notify": "Choisissez au moins un moyen d'être prévenu (courriel ou SMS).",
}


def _identity(form: dict, region: str) -> tuple[Identity | None, dict[str, str]]:
    """The identity typed, or the errors to show beside each field."""
    errors: dict[str, str] = {}
    values = {k: params.text(form.get(k)) for k in ("first_name", "last_name", "email", "phone")}
    for name in ("first_name", "last_name", "email"):
        try:
            msgspec.convert({name: values[name]}, _IdentityForm, strict=False)
        except msgspec.ValidationError as e:
            if f"$.{name}" in str(e):
                errors[name] = FIELD_ERRORS[name]
    phone = values["phone"] or None
    if phone is not None and (len(phone) > 40 or phones.e164(phone, region) is None):
        errors["phone"] = FIELD_ERRORS["phone"]
    by_email = form.get("notify_email") == "1"
    by_sms = form.get("notify_sms") == "1" and phone is not None
    if errors:
        return None, errors
    identity = Identity(
        first_name=values["first_name"],
        last_name=values["last_name"],
        email=values["email"].strip().lower(),
        phone=phone,
        notify_by_email=by_email,
        notify_by_sms=by_sms,
    )
    return identity, errors


async def identity_post(request: web.Request) -> web.Response:
    ctx = context(request)
    form = dict(await request.post())
    form = {k: v for k, v in form.items() if isinstance(v, str)}
    choice, offered, nearest = await _read_choice(request, form)
    organisation = choice.offer.organisation
    values = {**choice.values(), "title": "Vos coordonnées"}
    if not offered:
        return taken_page(request, values, nearest, post_to=None)
    identity, errors = _identity(form, phones.region_of_zone(organisation["holiday_zone"]))
    if identity is None:
        shown = {k: form.get(k, "") for k in ("first_name", "last_name", "email", "phone")}
        return page(
            request,
            "booking/identity.html",
            {**values, "form": shown, "errors": errors},
            status=422,
        )
    check(request, ctx.limits.emails, ("email", key_of(identity.email)))
    if not ctx.smtp.host:
        raise PageError(
            503, "La confirmation par courriel n'est pas disponible : contactez le service."
        )
    now = offers.utc_now()
    request_id = secrets.token_urlsafe(16)
    code = f"{secrets.randbelow(1_000_000):06d}"
    token = secrets.token_urlsafe(24)
    slug = organisation["slug"]
    link = f"{ctx.base_url}/prendre-rdv/{slug}/demandes/{request_id}/lien/{token}"
    message = mail.verification_message(
        request,
        ctx.smtp,
        identity.email,
        organisation=organisation,
        motif=choice.motif,
        starts_at=choice.start,
        code=code,
        link=link,
    )

    def write(conn: Connection) -> None:
        public_booking.purge(conn, int(now.timestamp()))
        public_booking.create_request(
            conn,
            {
                "id": request_id,
                "organisation_id": organisation["id"],
                "motif_id": choice.motif["id"],
                "lieu_id": choice.lieu["id"] if choice.lieu else None,
                "starts_at": int(choice.start.timestamp()),
                "first_name": identity.first_name,
                "last_name": identity.last_name,
                "email": identity.email,
                "phone": identity.phone,
                "notify_by_email": identity.notify_by_email,
                "notify_by_sms": identity.notify_by_sms,
                "code_hash": keyed_digest(request, f"code:{request_id}:{code}"),
                "link_hash": _token_hash(token),
                "session_hash": session_digest(request, REQUEST_PURPOSE),
                "created_at": int(now.timestamp()),
                "expires_at": int((now + VALID).timestamp()),
                # Sent by the notification worker, woken by this commit.
                "mail": message.as_string(),
                "mail_due_ms": int(now.timestamp() * 1000),
            },
        )

    await ctx.writing(ctx.write, write)
    raise web.HTTPSeeOther(f"/prendre-rdv/{slug}/demandes/{request_id}")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# -- the email check ---------------------------------------------------------------


def _request_id(request: web.Request) -> str:
    raw = request.match_info["request"]
    if not (0 < len(raw) <= 32 and all(c.isalnum() or c in "-_" for c in raw)):
        raise web.HTTPNotFound()
    return raw


async def _load_request(request: web.Request, *, own_session: bool) -> tuple[dict, dict]:
    """(request, organisation), or 404 when there is none here (or, with
    ``own_session``, when another browser asked for it)."""
    ctx = context(request)
    slug, request_id = params.slug(request), _request_id(request)

    def read(conn: Connection) -> tuple[dict, dict]:
        found = public_booking.booking_request(conn, request_id)
        organisation = scheduling.organisation_by_slug(conn, slug)
        if found is None or organisation is None or found["organisation_id"] != organisation["id"]:
            raise web.HTTPNotFound()
        return found, organisation

    found, organisation = await ctx.run(ctx.read, read)
    if own_session and not hmac.compare_digest(
        found["session_hash"], session_digest(request, REQUEST_PURPOSE)
    ):
        raise web.HTTPNotFound()
    return found, organisation


def _request_values(found: dict, organisation: dict, motif: dict | None, lieu: dict | None) -> dict:
    zone = ZoneInfo(organisation["time_zone"])
    return {
        "organisation": organisation,
        "slug": organisation["slug"],
        "modalities": offers.MODALITIES,
        "zone": zone,
        "motif": motif,
        "lieu": lieu,
        "start": datetime.fromtimestamp(found["starts_at"], zone),
        "request_id": found["id"],
        "email": found["email"],
        "mail_refused": bool(found.get("mail_refused")),
        "identity_href": _identity_href(found, organisation),
    }


def _identity_href(found: dict, organisation: dict) -> str:
    """The identity step of the request's slot (to give another address)."""
    start = datetime.fromtimestamp(found["starts_at"], UTC)
    query = params.slot_query(found["lieu_id"], start, organisation["time_zone"])
    return f"/prendre-rdv/{organisation['slug']}/motifs/{found['motif_id']}/identite?{query}"


async def _values_of(request: web.Request, found: dict, organisation: dict) -> dict:
    ctx = context(request)

    def read(conn: Connection) -> tuple[dict | None, dict | None]:
        motif = scheduling.motif(conn, found["motif_id"])
        lieu = scheduling.lieu(conn, found["lieu_id"]) if found["lieu_id"] else None
        return motif, lieu

    motif, lieu = await ctx.run(ctx.read, read)
    return _request_values(found, organisation, motif, lieu)


def _booked_redirect(request: web.Request, found: dict, organisation: dict) -> None:
    """A request already booked: its confirmation, for a browser that may see it."""
    if found["rdv_uid"]:
        session = session_of(request)
        session[RDV_KEY] = [found["agent_id"], found["rdv_uid"]]
        raise web.HTTPSeeOther(f"/prendre-rdv/{organisation['slug']}/rendez-vous")


def _expired(found: dict, now: datetime) -> bool:
    return found["expires_at"] < now.timestamp()


async def code_page(request: web.Request) -> web.Response:
    found, organisation = await _load_request(request, own_session=True)
    _booked_redirect(request, found, organisation)
    if _expired(found, offers.utc_now()):
        raise PageError(410, EXPIRED)
    values = await _values_of(request, found, organisation)
    return page(
        request,
        "booking/code.html",
        {**values, "error": None, "title": "Confirmez votre adresse électronique"},
    )


async def code_post(request: web.Request) -> web.Response:
    found, organisation = await _load_request(request, own_session=True)
    _booked_redirect(request, found, organisation)
    ctx = context(request)
    check(request, ctx.limits.guesses, ("request", found["id"]))
    if _expired(found, offers.utc_now()) or found["attempts"] >= MAX_CODE_ATTEMPTS:
        raise PageError(410, EXPIRED)
    form = await request.post()
    code = "".join(str(form.get("code", "")).split())
    expected = keyed_digest(request, f"code:{found['id']}:{code}")
    if not hmac.compare_digest(expected, found["code_hash"]):
        await ctx.writing(ctx.write, lambda conn: public_booking.count_attempt(conn, found["id"]))
        values = await _values_of(request, found, organisation)
        left = MAX_CODE_ATTEMPTS - found["attempts"] - 1
        error = (
            f"Ce code n'est pas le bon. Il vous reste {left} essai{'s' if left > 1 else ''}."
            if left > 0
            else EXPIRED
        )
        return page(
            request,
            "booking/code.html",
            {**values, "error": error, "title": "Confirmez votre adresse électronique"},
            status=422,
        )
    return await _confirm(request, found, organisation)


async def _load_link(request: web.Request) -> tuple[dict, dict]:
    found, organisation = await _load_request(request, own_session=False)
    token = request.match_info["token"]
    if not hmac.compare_digest(_token_hash(token), found["link_hash"]):
        raise web.HTTPNotFound()
    return found, organisation


async def link_page(request: web.Request) -> web.Response:
    """The emailed link: one button confirms (a GET changes nothing, so a
    mail scanner opening links books nothing)."""
    found, organisation = await _load_link(request)
    _booked_redirect(request, found, organisation)
    if _expired(found, offers.utc_now()):
        raise PageError(410, EXPIRED)
    values = await _values_of(request, found, organisation)
    return page(request, "booking/link.html", {**values, "title": "Confirmez votre rendez-vous"})


async def link_post(request: web.Request) -> web.Response:
    found, organisation = await _load_link(request)
    _booked_redirect(request, found, organisation)
    if _expired(found, offers.utc_now()):
        raise PageError(410, EXPIRED)
    return await _confirm(request, found, organisation)


@dataclass(frozen=True)
class _Outcome:
    booked: tuple[int, str] | None = None
    taken: bool = False


def _slot_agent(conn: Connection, found: dict, organisation: dict, now: datetime) -> int | None:
    """The request's slot's agent, searched before the write transaction
    (None when the search offers it no more: the write then decides)."""
    motif = scheduling.motif(conn, found["motif_id"])
    if motif is None:
        return None
    lieu = scheduling.lieu(conn, found["lieu_id"]) if found["lieu_id"] else None
    start = datetime.fromtimestamp(found["starts_at"], ZoneInfo(organisation["time_zone"]))
    try:
        return slot_agent(conn, motif, lieu, start, now)
    except (SlotTaken, BookingRefused):
        return None


def _confirm_write(
    ctx: WebContext, request_id: str, now: datetime, agent_id: int | None
) -> _Outcome:
    def write(conn: Connection) -> _Outcome:
        found = public_booking.booking_request(conn, request_id, lock=True)
        if found is None:
            raise web.HTTPNotFound()
        if found["rdv_uid"]:
            return _Outcome(booked=(found["agent_id"], found["rdv_uid"]))
        organisation = scheduling.organisation(conn, found["organisation_id"])
        assert organisation is not None
        offer = offers.offer_of(conn, organisation, now)
        motif = offer.motif(found["motif_id"])
        if motif is None:
            raise PageError(422, REFUSED)
        lieu = offer.lieu(motif["id"], found["lieu_id"])
        if motif["location_type"] == "public_office" and lieu is None:
            raise PageError(422, REFUSED)
        identity = Identity(
            found["first_name"],
            found["last_name"],
            found["email"],
            found["phone"],
            bool(found["notify_by_email"]),
            bool(found["notify_by_sms"]),
        )
        start = datetime.fromtimestamp(found["starts_at"], ZoneInfo(organisation["time_zone"]))
        try:
            with conn.begin_nested():
                usager = usager_for(conn, organisation["id"], identity)
                booked = book(
                    conn, organisation, motif, lieu, start, usager, now, agent_id=agent_id
                )
        except SlotTaken:
            public_booking.update_request(
                conn, request_id, verified=True, expires_at=int((now + VALID).timestamp())
            )
            return _Outcome(taken=True)
        except BookingRefused:
            raise PageError(422, REFUSED) from None
        public_booking.update_request(
            conn, request_id, verified=True, agent_id=booked.agent_id, rdv_uid=booked.uid
        )
        return _Outcome(booked=(booked.agent_id, booked.uid))

    return ctx.write(write)


async def _confirm(request: web.Request, found: dict, organisation: dict) -> web.Response:
    ctx = context(request)
    now = offers.utc_now()
    # On the read threads, not the searches' low-priority one: this search
    # follows a right code or link only (no one can ask for it in bulk), and
    # a booking must not queue behind the crowd's créneaux searches.
    agent_id = await ctx.run(ctx.read, lambda conn: _slot_agent(conn, found, organisation, now))
    outcome = await ctx.writing(_confirm_write, ctx, found["id"], now, agent_id)
    session = session_of(request)
    slug = organisation["slug"]
    if outcome.taken:
        session[VERIFIED_KEY] = found["id"]
        raise web.HTTPSeeOther(f"/prendre-rdv/{slug}/demandes/{found['id']}/autre-creneau")
    assert outcome.booked is not None
    session[RDV_KEY] = list(outcome.booked)
    session.pop(VERIFIED_KEY)
    raise web.HTTPSeeOther(f"/prendre-rdv/{slug}/rendez-vous")


async def _verified_request(request: web.Request) -> tuple[dict, dict]:
    """A request whose email this browser confirmed, and whose slot was taken."""
    found, organisation = await _load_request(request, own_session=False)
    _booked_redirect(request, found, organisation)
    if session_of(request).get(VERIFIED_KEY) != found["id"] or not found["verified"]:
        raise web.HTTPNotFound()
    if _expired(found, offers.utc_now()):
        raise PageError(410, EXPIRED)
    return found, organisation


async def other_slot_page(request: web.Request) -> web.Response:
    found, organisation = await _verified_request(request)
    ctx = context(request)
    now = offers.utc_now()

    def read(conn: Connection) -> tuple[dict, dict | None, list]:
        motif = scheduling.motif(conn, found["motif_id"])
        if motif is None:
            raise PageError(422, REFUSED)
        lieu = scheduling.lieu(conn, found["lieu_id"]) if found["lieu_id"] else None
        wanted = datetime.fromtimestamp(found["starts_at"], ZoneInfo(organisation["time_zone"]))
        return motif, lieu, offers.nearest(conn, motif, found["lieu_id"], wanted, now)

    motif, lieu, nearest = await ctx.search(ctx.read, read)
    values = {
        **_request_values(found, organisation, motif, lieu),
        "title": "Ce créneau n'est plus disponible",
    }
    post_to = f"/prendre-rdv/{organisation['slug']}/demandes/{found['id']}/autre-creneau"
    return taken_page(request, values, nearest, post_to=post_to)


async def other_slot_post(request: web.Request) -> web.Response:
    found, organisation = await _verified_request(request)
    form = await request.post()
    raw = form.get("debut")
    start = params.slot(raw if isinstance(raw, str) else None, organisation["time_zone"])
    ctx = context(request)
    await ctx.writing(
        ctx.write,
        lambda conn: public_booking.update_request(
            conn, found["id"], starts_at=int(start.timestamp())
        ),
    )
    return await _confirm(request, {**found, "starts_at": int(start.timestamp())}, organisation)


# -- the confirmation ------------------------------------------------------------


@dataclass(frozen=True)
class _Rdv:
    parsed: events.ParsedEvent
    item_id: int
    motif: dict
    lieu: dict | None


def _booked_rdv(conn: Connection, organisation: dict, agent_id: int, uid: str) -> _Rdv:
    agent = scheduling.agent(conn, agent_id)
    if agent is None:
        raise web.HTTPNotFound()
    path = rdv_agenda(agent["login"])
    href = agenda_writer.href_of(conn, path, uid)
    text = agenda_writer.event_text(conn, path, href) if href else None
    if href is None or text is None:
        raise web.HTTPNotFound()
    parsed = events.parse(text, organisation["time_zone"])
    motif = scheduling.motif(conn, parsed.motif_ids[0]) if parsed.motif_ids else None
    if motif is None or motif["organisation_id"] != organisation["id"]:
        raise web.HTTPNotFound()
    lieu = scheduling.lieu(conn, parsed.lieu_id) if parsed.lieu_id else None
    item_id = agenda_writer.item_id_of(conn, path, href)
    assert item_id is not None
    return _Rdv(parsed, item_id, motif, lieu)


async def _session_rdv(request: web.Request) -> tuple[dict, _Rdv]:
    """The RDV this browser just booked, in this organisation (else 404)."""
    slug = params.slug(request)
    held = session_of(request).get(RDV_KEY)
    if not (isinstance(held, list) and len(held) == 2):
        raise web.HTTPNotFound()
    agent_id, uid = held
    ctx = context(request)

    def read(conn: Connection) -> tuple[dict, _Rdv]:
        organisation = scheduling.organisation_by_slug(conn, slug)
        if organisation is None:
            raise web.HTTPNotFound()
        return organisation, _booked_rdv(conn, organisation, int(agent_id), str(uid))

    return await ctx.run(ctx.read, read)


async def confirmation_page(request: web.Request) -> web.Response:
    organisation, rdv = await _session_rdv(request)
    zone = ZoneInfo(organisation["time_zone"])
    return page(
        request,
        "booking/confirmation.html",
        {
            "organisation": organisation,
            "slug": organisation["slug"],
            "modalities": offers.MODALITIES,
            "zone": zone,
            "motif": rdv.motif,
            "lieu": rdv.lieu,
            "start": rdv.parsed.start.astimezone(zone),
            "cancelled": rdv.parsed.rdv_status in ("excused", "revoked"),
            "title": "Votre rendez-vous est confirmé",
        },
    )


async def ics_download(request: web.Request) -> web.Response:
    organisation, rdv = await _session_rdv(request)
    ctx = context(request)
    content = render.Content(
        audience="usager",
        kind="created",
        motif=rdv.motif["name"],
        starts_at=rdv.parsed.start,
        zone=organisation["time_zone"],
        location_type=rdv.motif["location_type"],
        lieu_name=rdv.lieu["name"] if rdv.lieu else None,
        lieu_address=rdv.lieu["address"] if rdv.lieu else None,
    )
    event = ics.IcsEvent(
        uid=f"{agenda_index.public_id(rdv.item_id)}@calserver",
        sequence=rdv.parsed.sequence,
        starts_at=rdv.parsed.start,
        ends_at=rdv.parsed.end,
        summary=f"RDV {rdv.motif['name']}",
        location=render.place(content),
        description=rdv.motif["instructions_after"] or rdv.motif["name"],
        cancelled=rdv.parsed.rdv_status in ("excused", "revoked"),
        organizer=organisation["contact_email"] or ctx.smtp.sender,
    )
    return web.Response(
        body=ics.build(event, "PUBLISH"),
        content_type="text/calendar",
        charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="rendez-vous.ics"'},
    )


def add_routes(app: web.Application) -> None:
    motif = "/{slug}/motifs/{motif}"
    demande = "/{slug}/demandes/{request}"
    app.router.add_get(motif + "/rdv", instructions_page)
    app.router.add_get(motif + "/identite", identity_page)
    app.router.add_post(motif + "/identite", identity_post)
    app.router.add_get(demande, code_page)
    app.router.add_post(demande, code_post)
    app.router.add_get(demande + "/lien/{token}", link_page)
    app.router.add_post(demande + "/lien/{token}", link_post)
    app.router.add_get(demande + "/autre-creneau", other_slot_page)
    app.router.add_post(demande + "/autre-creneau", other_slot_post)
    app.router.add_get("/{slug}/rendez-vous", confirmation_page)
    app.router.add_get("/{slug}/rendez-vous.ics", ics_download)
