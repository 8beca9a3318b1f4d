"""The back office: agents log in and open the RDV page feeds link to (see ``pages``)."""

from __future__ import annotations

from calserver.web.backoffice.pages import PREFIX, add_routes

__all__ = ["PREFIX", "add_routes"]
