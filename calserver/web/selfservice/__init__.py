"""The usagers' self-service page: the "Infos et annulation" link of their
notifications, ``/r/<item id>/<token>`` (see ``pages``)."""

from __future__ import annotations

from calserver.web.selfservice.pages import add_routes

PREFIX = "/r"
__all__ = ["PREFIX", "add_routes"]
