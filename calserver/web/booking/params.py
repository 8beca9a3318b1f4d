"""The public pages' URL and form parameters, read strictly: an id is digits,
a day is an ISO date, a slot an ISO local time; anything else is a 404 or a
400 page, never a 500."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from aiohttp import web

from calserver.web.errors import PageError
from storage.text import unstorable

MAX_ID = 2**31 - 1
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$")
_SLOT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$")

BAD = "Cette adresse contient une valeur que nous ne comprenons pas."


def slug(request: web.Request) -> str:
    raw = request.match_info["slug"]
    if not SLUG.match(raw):
        raise web.HTTPNotFound()
    return raw


def path_id(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_ID:
        raise web.HTTPNotFound()
    return int(raw)


def optional_id(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_ID:
        raise PageError(400, BAD)
    return int(raw)


def day(raw: str | None) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw) if len(raw) == 10 else _bad()
    except ValueError:
        return _bad()


def slot(raw: str | None, zone: str) -> datetime:
    """A slot's start as the page writes it (``2026-12-07T09:30``, local time)."""
    if not raw or not _SLOT.match(raw):
        raise PageError(400, "Ce créneau n'est pas lisible. Choisissez-en un dans la liste.")
    try:
        local = datetime.fromisoformat(raw)
        return local.replace(tzinfo=ZoneInfo(zone))
    except ValueError:
        raise PageError(
            400, "Ce créneau n'est pas lisible. Choisissez-en un dans la liste."
        ) from None


def slot_text(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")


def lieu_query(lieu_id: int | None) -> str:
    """The lieu's part of a slot's query string (none for a motif without one)."""
    return f"lieu={lieu_id}&" if lieu_id else ""


def slot_query(lieu_id: int | None, start: datetime, zone: str) -> str:
    """The query string that names a slot on the booking pages."""
    return f"{lieu_query(lieu_id)}debut={slot_text(start, zone)}"


def text(raw: str | None) -> str:
    """A form's text, trimmed; control characters refused."""
    value = (raw or "").strip()
    if unstorable(value) is not None:
        raise PageError(400, "Un champ contient des caractères non autorisés.")
    return value


def midnight(day_: date, zone: str) -> datetime:
    return datetime.combine(day_, time(), ZoneInfo(zone))


def _bad() -> date:
    raise PageError(400, BAD)
