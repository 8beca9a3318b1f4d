"""The email that confirms a usager's address before their RDV is booked: a
link and a 6-digit code, valid 30 minutes, sent with the notifications'
email channel (``notifications.email``: the same message shape and SMTP
settings)."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from calserver.web.render import TEMPLATES
from notifications import email, render
from notifications.email import SmtpSettings


def verification_message(
    request: web.Request,
    smtp: SmtpSettings,
    to: str,
    *,
    organisation: dict,
    motif: dict,
    starts_at: datetime,
    code: str,
    link: str,
) -> email.EmailMessage:
    env = request.app[TEMPLATES]
    values = {
        "organisation": organisation,
        "motif": motif,
        "when": render.when(starts_at, organisation["time_zone"]),
        "code": code,
        "link": link,
    }
    subject = f"Votre code de confirmation : {code}"
    text = env.get_template("booking/verification_email.txt").render(values)
    html = env.get_template("booking/verification_email.html").render(values)
    return email.compose(smtp, to, subject, text, html)
