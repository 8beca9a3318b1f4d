"""Jinja2 templates shipped inside the package (``calserver/web/templates``),
rendered with autoescaping, and the French words for dates and times.

A page handler calls ``page(request, "name.html", values)``: the template
also receives ``csrf`` (the session's CSRF token, for every form) and
``base_url``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import jinja2
from aiohttp import web

from calserver.web.sessions import csrf_token
from notifications.render import DAYS, MONTHS

TEMPLATES = web.AppKey("templates", jinja2.Environment)


def day_fr(moment: datetime) -> str:
    """``lundi 7 décembre 2026``."""
    return f"{DAYS[moment.weekday()]} {moment.day} {MONTHS[moment.month - 1]} {moment.year}"


SHORT_MONTHS = (
    "janv.", "févr.", "mars", "avr.", "mai", "juin",
    "juil.", "août", "sept.", "oct.", "nov.", "déc.",
)  # fmt: skip


def short_day_fr(moment: datetime) -> str:
    """``lun. 7 déc.``: a column heading of the week of créneaux."""
    return f"{DAYS[moment.weekday()][:3]}. {moment.day} {SHORT_MONTHS[moment.month - 1]}"


def time_fr(moment: datetime) -> str:
    """``9h30``, ``14h00``."""
    return f"{moment.hour}h{moment.minute:02d}"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("calserver.web", "templates"),
        autoescape=jinja2.select_autoescape(disabled_extensions=("txt",), default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(day_fr=day_fr, short_day_fr=short_day_fr, time_fr=time_fr)
    return env


def page(
    request: web.Request,
    template: str,
    values: dict[str, Any] | None = None,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """The template rendered as an HTML page of this request."""
    env = request.app[TEMPLATES]
    text = env.get_template(template).render(
        csrf=csrf_token(request), request_path=request.path, **(values or {})
    )
    return web.Response(
        text=text, status=status, content_type="text/html", charset="utf-8", headers=headers
    )
