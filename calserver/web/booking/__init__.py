"""The public booking page, ``/prendre-rdv/<slug>``: service, motif, lieu,
créneau, instructions, identity, email check, confirmation; and invitations
from other systems.  See docs/public-booking.md."""

from __future__ import annotations

from aiohttp import web

from calserver.web.booking import confirm, invitation, pages

PREFIX = "/prendre-rdv"


def add_routes(app: web.Application) -> None:
    pages.add_routes(app)
    confirm.add_routes(app)
    invitation.add_routes(app)
