"""Stand-ins for the outside world, on loopback: a real SMTP server
(aiosmtpd) and an SMS provider speaking the generic JSON API (aiohttp)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import threading
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage

from aiohttp import web
from aiosmtpd.controller import Controller

from tests.conftest import free_port

SMS_TOKEN = "sms-token-for-tests"


class Mailbox:
    """aiosmtpd handler: keeps every message; ``reply`` (e.g. "451 busy")
    makes it refuse the next ones with that answer instead, ``refused``
    (address: answer) refuses those recipients only, ``dropped`` (addresses)
    hangs up on them without an answer, ``delay_s`` makes each
    answer late.  ``peers`` is each accepted message's client address and
    port: how many connections brought them."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []  # each accepted message's RCPT TO
        self.peers: list[object] = []  # each accepted message's connection (client address)
        self.refused: dict[str, str] = {}
        self.dropped: set[str] = set()
        self.reply: str | None = None
        self.delay_s = 0.0  # how long each answer to DATA takes
        self.step_delay_s = 0.0  # how long each answer to MAIL and RCPT takes
        self.started = 0  # messages whose DATA arrived, answered or not
        self._lock = threading.Lock()

    async def handle_MAIL(self, server, session, envelope, address, options) -> str:  # type: ignore[no-untyped-def]
        await asyncio.sleep(self.step_delay_s)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, options) -> str:  # type: ignore[no-untyped-def]
        await asyncio.sleep(self.step_delay_s)
        if address in self.refused:
            return self.refused[address]
        if address in self.dropped:
            server.transport.close()
            return "421 closing"  # never read: the connection is gone
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]
        self.started += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.reply is not None:
            return self.reply
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.messages.append(message)  # type: ignore[arg-type]
            self.recipients.append(list(envelope.rcpt_tos))
            self.peers.append(session.peer)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if m["To"] == address]


class SmtpServer:
    def __init__(self, port: int | None = None) -> None:
        self.mailbox = Mailbox()
        self.port = port or free_port()
        self._controller: Controller | None = None

    def start(self) -> SmtpServer:
        self._controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


class SmsProvider:
    """The generic JSON SMS API, run on its own thread's event loop."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.peers: list[object] = []  # each accepted SMS's connection (client address)
        self.status = 200
        self.delay_s = 0.0
        self.plain: str | None = None  # a 2xx answer's body as text, not JSON
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    async def _handle(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {SMS_TOKEN}":
            return web.json_response({"error": "unauthorised"}, status=401)
        body = json.loads(await request.read())
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.status != 200:
            return web.json_response({"error": "no"}, status=self.status)
        self.received.append(body)
        assert request.transport is not None
        self.peers.append(request.transport.get_extra_info("peername"))
        if self.plain is not None:
            return web.Response(text=self.plain)
        return web.json_response({"id": f"sms-{len(self.received)}"})

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/send", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/send"

    def start(self) -> SmsProvider:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def to(self, number: str) -> list[dict]:
        return [m for m in list(self.received) if m["to"] == number]


def smtp_running() -> Iterator[SmtpServer]:
    """A fixture's body: an SMTP server, started, then stopped."""
    server = SmtpServer().start()
    yield server
    server.stop()


def both_running() -> Iterator[tuple[SmtpServer, SmsProvider]]:
    """A module fixture's body: an SMTP server and an SMS provider, started,
    then stopped once the module is done."""
    smtp, provider = SmtpServer().start(), SmsProvider().start()
    yield smtp, provider
    smtp.stop()
    provider.stop()


def server_config(smtp: SmtpServer, provider: SmsProvider) -> str:
    """A server's configuration sending through these fakes, retrying soon,
    logging at debug level (a test may then check the log holds no personal
    data).  Clears what the fakes received for an earlier server."""
    smtp.mailbox.messages.clear()
    provider.received.clear()
    return (
        f"[smtp]\nhost = 127.0.0.1\nport = {smtp.port}\nsender = rdv@mairie.example.fr\n"
        "timeout_seconds = 2\n"
        f"[sms]\nprovider = json_http\nurl = {provider.url}\ntoken = {SMS_TOKEN}\n"
        "sender = MAIRIE\ntimeout_seconds = 2\n"
        "[notifications]\nretry_first_ms = 300\npoll_seconds = 1\n"
        "[logging]\nlevel = debug\n"
    )


def wait_for(condition: Callable[[], object], timeout: float = 15.0) -> object:
    """Poll ``condition`` every 50 ms until it is truthy; its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("condition not met in time")
