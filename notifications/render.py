"""The words of a notification: the package's Jinja2 templates (French),
filled from plain data.

Templates live in ``notifications/templates`` (shipped as package data):
``subject.txt``, ``usager_email.txt``/``.html``, ``usager_sms.txt``,
``agent_email.txt``/``.html``.  HTML is autoescaped; a missing variable is an
error, not an empty string.  Times are said in the organisation's zone; a
home visit's time is approximate ("vers 10h30"), as RDV-SP says it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from notifications import gsm

if TYPE_CHECKING:
    import jinja2

DAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
    "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip
PLACES = {"phone": "Par téléphone", "home": "À domicile", "visio": "En visioconférence"}


@dataclass(frozen=True)
class Content:
    """What a notification says, whoever receives it."""

    audience: str  # usager / agent
    kind: str  # created / updated / cancelled / reminder
    motif: str
    starts_at: datetime
    zone: str
    location_type: str
    lieu_name: str | None = None
    lieu_address: str | None = None
    instructions: str = ""
    organisation: dict[str, Any] = field(default_factory=dict)
    link: str | None = None
    previous_starts_at: datetime | None = None

    @property
    def template(self) -> str:
        """The receipt's name for what was sent: audience and kind."""
        return f"{self.audience}_{self.kind}"


@functools.cache
def _environment() -> jinja2.Environment:
    # Imported on first use: a server that sends nothing never loads it.
    import jinja2

    # The templates ship with the package: compiled once, never looked at on
    # disk again (auto_reload stats each one, the layout too, at every
    # render: a tenth of the worker's CPU); a changed template needs a restart.
    return jinja2.Environment(
        loader=jinja2.PackageLoader("notifications", "templates"),
        auto_reload=False,
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def when(moment: datetime, zone: str, approximate: bool = False) -> str:
    """ "lundi 7 décembre 2026 à 10h30" in the zone ("vers" when approximate)."""
    local = moment.astimezone(ZoneInfo(zone))
    at = "vers" if approximate else "à"
    return (
        f"{DAYS[local.weekday()]} {local.day} {MONTHS[local.month - 1]} {local.year} "
        f"{at} {local:%H}h{local:%M}"
    )


def when_short(moment: datetime, zone: str, approximate: bool = False) -> str:
    """ "lun. 7/12 à 10h30", for an SMS."""
    local = moment.astimezone(ZoneInfo(zone))
    at = "vers" if approximate else "à"
    return f"{DAYS[local.weekday()][:3]}. {local.day}/{local.month} {at} {local:%H}h{local:%M}"


def place(content: Content) -> str:
    if content.location_type in PLACES:
        return PLACES[content.location_type]
    if content.lieu_name and content.lieu_address:
        return f"{content.lieu_name}, {content.lieu_address}"
    return content.lieu_name or content.lieu_address or "Lieu à confirmer"


def _variables(content: Content) -> dict[str, Any]:
    approximate = content.location_type == "home"
    previous = content.previous_starts_at
    return {
        "audience": content.audience,
        "kind": content.kind,
        "motif": content.motif,
        "when": when(content.starts_at, content.zone, approximate),
        "when_short": when_short(content.starts_at, content.zone, approximate),
        "previous_when": when(previous, content.zone, approximate) if previous else None,
        "place": place(content),
        "instructions": content.instructions.strip(),
        "organisation": {
            "name": content.organisation.get("name", ""),
            "phone": content.organisation.get("phone"),
            "email": content.organisation.get("email"),
            "address": content.organisation.get("address"),
        },
        "link": content.link,
    }


def _render(name: str, variables: dict[str, Any]) -> str:
    return _environment().get_template(name).render(variables).strip() + "\n"


def email(content: Content) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of the email."""
    variables = _variables(content)
    subject = " ".join(_render("subject.txt", variables).split())
    variables["subject"] = subject
    text = _render(f"{content.audience}_email.txt", variables)
    html = _render(f"{content.audience}_email.html", variables)
    return subject, text, html


MOTIF_SHORT = 40


def _shorter(content: Content) -> Iterator[Content]:
    """The content, then with its optional parts cut one after the other:
    the lieu's address (its name stays), the organisation's phone, a long
    motif name."""
    yield content
    if content.lieu_name and content.lieu_address:
        content = replace(content, lieu_address=None)
        yield content
    if content.organisation.get("phone"):
        content = replace(content, organisation={**content.organisation, "phone": None})
        yield content
    if len(content.motif) > MOTIF_SHORT:
        yield replace(content, motif=content.motif[: MOTIF_SHORT - 1].rstrip() + "…")


def sms(content: Content, max_segments: int = 3) -> str | None:
    """The SMS text, within GSM-7 and ``max_segments`` segments (each one is
    billed): the optional parts are cut first; None when even the shortest
    text is longer (the message is refused rather than sent as a long one)."""
    for version in _shorter(content):
        text = gsm.transliterate(_render("usager_sms.txt", _variables(version)).strip())
        if gsm.segments(text) <= max_segments:
            return text
    return None
