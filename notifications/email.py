"""Email over SMTP (``aiosmtplib``): the message's shape, and sending on
one connection for many messages (``Connection``).

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
from email.charset import BASE64, QP, Charset
from email.header import Header
from email.message import Message
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart

import aiosmtplib

from notifications.outcome import Outcome, failed, retry, sent

SECURITY = ("none", "starttls", "tls")


def _charset(body_encoding: int) -> Charset:
    charset = Charset("utf-8")
    charset.body_encoding = body_encoding
    return charset


# Text and HTML stay readable in transit; the calendar part is base64, as
# Outlook expects it.
_QUOTED_PRINTABLE, _BASE64 = _charset(QP), _charset(BASE64)


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


def _text_part(text: str, subtype: str, charset: Charset) -> MIMENonMultipart:
    part = MIMENonMultipart("text", subtype)
    part.set_payload(text, charset)
    return part


def _header(value: str) -> str | Header:
    """A header's value; RFC 2047 encoded words when it is not ASCII."""
    return value if value.isascii() else Header(value, "utf-8")


def compose(
    settings: SmtpSettings,
    to: str,
    subject: str,
    text: str,
    html: str,
    calendar: Calendar | None = None,
) -> Message:
    """The message as sent, with a fresh Message-ID (the receipt's provider id).

    Built with the classic ``email.mime`` classes: the ``EmailMessage``
    API parses every header it sets back through its header registry, which
    made composing and flattening one email about 9 ms of the worker's CPU
    (in the server's process, time taken from the requests); this is a
    fraction of it for the same message."""
    alternative = MIMEMultipart("alternative")
    alternative.attach(_text_part(text, "plain", _QUOTED_PRINTABLE))
    alternative.attach(_text_part(html, "html", _QUOTED_PRINTABLE))
    message: MIMEMultipart = alternative
    if calendar is not None:
        invitation = _text_part(calendar.text.decode("utf-8"), "calendar", _BASE64)
        invitation.set_param("method", calendar.method)
        alternative.attach(invitation)
        attachment = MIMEApplication(calendar.text, "ics")
        attachment.add_header("Content-Disposition", "attachment", filename=calendar.filename)
        message = MIMEMultipart("mixed", _subparts=[alternative, attachment])
    message["From"] = _header(settings.sender)
    message["To"] = _header(to)
    message["Subject"] = _header(subject)
    message["Date"] = email.utils.formatdate(localtime=False)
    domain = settings.sender.rpartition("@")[2] or "calserver"
    message["Message-ID"] = email.utils.make_msgid("calserver", domain=domain)
    # RFC 3834: no vacation replies to an automatic message.
    message["Auto-Submitted"] = "auto-generated"
    return message


@dataclass(frozen=True)
class Flat:
    """A message as the bytes sent, ready before the exchange (the worker
    flattens it in its preparing thread, not on the server's event loop)."""

    data: bytes
    message_id: str


def flatten(message: Message) -> Flat:
    """The message's bytes as SMTP carries them: every part is ASCII already
    (headers as encoded words, bodies quoted-printable or base64)."""
    return Flat(message.as_bytes(), str(message["Message-ID"]))


def _by_code(code: int) -> Outcome:
    reason = f"SMTP {code}"
    return retry(reason) if 400 <= code < 500 else failed(reason)


_ERRORS = (aiosmtplib.SMTPException, OSError, TimeoutError)
# The server answered: the exchange ended where the protocol says it does.
_ANSWERS = (aiosmtplib.SMTPRecipientsRefused, aiosmtplib.SMTPResponseException)


def _failure(e: BaseException) -> Outcome:
    """What one of ``_ERRORS`` means for the message."""
    if isinstance(e, aiosmtplib.SMTPRecipientsRefused):
        return _by_code(min([r.code for r in e.recipients] or [550]))
    if isinstance(e, aiosmtplib.SMTPResponseException):
        return _by_code(e.code)
    return retry(f"SMTP connection failed: {type(e).__name__}")


class Connection:
    """One SMTP connection for a worker round's emails, opened at the first
    and closed (QUIT) with ``close``.

    A new connection per email (TCP, greeting, EHLO, STARTTLS and login) was
    over a third of the worker's CPU, in the server's process, per booking.
    Each message's outcome stays its own: a refused recipient or a 4xx/5xx
    answer is that message's (aiosmtplib resets the envelope, the connection
    serves the next), a connection lost in an exchange fails that message and
    the next one reconnects.  A connection that cannot be opened (refused,
    timeout, a refused greeting or login) is not tried again in the round:
    every message left gets that outcome, as each would have by itself."""

    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings
        self._client: aiosmtplib.SMTP | None = None
        self._unopened: Outcome | None = None  # why the round's connection could not open

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is not None and self._client.is_connected:
            return self._client
        settings = self._settings
        client = aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.port,
            username=settings.user or None,
            password=settings.password or None,
            start_tls=settings.security == "starttls",
            use_tls=settings.security == "tls",
            timeout=settings.timeout_s,
        )
        try:
            await client.connect()
        except _ERRORS as e:
            self._unopened = _failure(e)
            raise
        self._client = client
        return client

    async def send(self, message: Flat, recipient: str) -> Outcome:
        """Hand the message to the SMTP server for ``recipient`` alone (never
        the addresses its To header may be read as); what came of it."""
        if self._unopened is not None:
            return self._unopened
        sender = self._settings.sender
        # An address beyond ASCII needs a server that takes one (RFC 6531).
        options = [] if (sender + recipient).isascii() else ["SMTPUTF8"]
        try:
            client = await self._connected()
            await client.sendmail(sender, [recipient], message.data, mail_options=options)
        except _ERRORS as e:
            if not isinstance(e, _ANSWERS):
                self.abort()  # in an unknown state: the next message reconnects
            return _failure(e)
        return sent(message.message_id)

    async def close(self) -> None:
        """QUIT, as a polite client does; a server that does not answer it
        is left (the messages are already handed over)."""
        client, self._client = self._client, None
        if client is not None and client.is_connected:
            try:
                await client.quit()
            except _ERRORS:
                client.close()

    def abort(self) -> None:
        """Drop the connection without a word (a send cut short)."""
        client, self._client = self._client, None
        if client is not None:
            client.close()


async def send(settings: SmtpSettings, message: Message, recipient: str) -> Outcome:
    """One message on a connection of its own."""
    connection = Connection(settings)
    try:
        return await connection.send(flatten(message), recipient)
    finally:
        await connection.close()
