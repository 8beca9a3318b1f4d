"""Email over SMTP (``aiosmtplib``): the message's shape and one send.

A message is ``multipart/mixed``: a ``multipart/alternative`` of the plain
text, the HTML and, when there is an event, the calendar itself as a
``text/calendar; method=...`` part (base64), which Outlook, Thunderbird and
Gmail show as an invitation; then the same calendar as an ``.ics``
attachment, for clients that only offer attachments.

SMTP answers say whether to try again: a 4xx reply, a refused or dropped
connection or a timeout is temporary; a 5xx reply is permanent.  The error
kept for the receipt is the reply code and the exception's type, never the
server's text, which often quotes the recipient's address.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib

from notifications.outcome import Outcome, failed, retry, sent

SECURITY = ("none", "starttls", "tls")


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 25
    security: str = "none"  # none / starttls / tls
    user: str = ""
    password: str = ""
    sender: str = "rdv@localhost"
    timeout_s: float = 20.0


@dataclass(frozen=True)
class Calendar:
    """An iCalendar object to carry, with its METHOD (PUBLISH, REQUEST, CANCEL)."""

    text: bytes
    method: str
    filename: str = "rdv.ics"


def compose(
    settings: SmtpSettings,
    to: str,
    subject: str,
    text: str,
    html: str,
    calendar: Calendar | None = None,
) -> EmailMessage:
    """The message as sent, with a fresh Message-ID (the receipt's provider id)."""
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = email.utils.formatdate(localtime=False)
    domain = settings.sender.rpartition("@")[2] or "calserver"
    message["Message-ID"] = email.utils.make_msgid("calserver", domain=domain)
    # RFC 3834: no vacation replies to an automatic message.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    if calendar is not None:
        part = EmailMessage()
        part.set_content(
            calendar.text,
            maintype="text",
            subtype="calendar",
            cte="base64",
            params={"method": calendar.method, "charset": "utf-8"},
        )
        message.attach(part)
        message.add_attachment(
            calendar.text, maintype="application", subtype="ics", filename=calendar.filename
        )
    return message


def _by_code(code: int) -> Outcome:
    reason = f"SMTP {code}"
    return retry(reason) if 400 <= code < 500 else failed(reason)


async def send(settings: SmtpSettings, message: EmailMessage, recipient: str) -> Outcome:
    """Hand the message to the SMTP server for ``recipient`` alone (never the
    addresses its To header may be read as); what came of it."""
    try:
        await aiosmtplib.send(
            message,
            sender=settings.sender,
            recipients=[recipient],
            hostname=settings.host,
            port=settings.port,
            username=settings.user or None,
            password=settings.password or None,
            start_tls=settings.security == "starttls",
            use_tls=settings.security == "tls",
            timeout=settings.timeout_s,
        )
    except aiosmtplib.SMTPRecipientsRefused as e:
        codes = [r.code for r in e.recipients] or [550]
        return _by_code(min(codes))
    except aiosmtplib.SMTPResponseException as e:
        return _by_code(e.code)
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as e:
        return retry(f"SMTP connection failed: {type(e).__name__}")
    return sent(str(message["Message-ID"]))
