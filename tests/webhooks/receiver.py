"""A webhook receiver on loopback, as a DSI would run one: aiohttp, every
request verified with the ``standardwebhooks`` library and, independently,
by recomputing ``X-Lapin-Signature``.  It answers what the test scripts
(status, headers, delay), then 200."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.conftest import free_port


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    verified: bool  # both signatures, with one of the receiver's secrets

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    endless: bool = False  # a body that never ends: written until the client hangs up


def verified(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    lapin = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(lapin, headers.get("X-Lapin-Signature", "")):
        return False
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True


class Receiver:
    def __init__(self, port: int = 0) -> None:
        self.port = port or free_port()
        self.secrets: list[str] = []
        self.received: list[Received] = []
        self.endless_bytes_written = 0
        self.script: dict[str, deque[Answer]] = {}
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, path: str, *answers: Answer) -> None:
        with self._lock:
            self.script.setdefault(path, deque()).extend(answers)

    async def _endless(self, request: web.Request, answer: Answer) -> web.StreamResponse:
        """Write 64 KiB after 64 KiB until the client stops reading and hangs
        up (or 256 MiB, a client that read it all)."""
        response = web.StreamResponse(status=answer.status, headers=answer.headers)
        await response.prepare(request)
        chunk = b"x" * 65_536
        try:
            while self.endless_bytes_written < 256 * 1024 * 1024:
                await response.write(chunk)
                self.endless_bytes_written += len(chunk)
        except (ConnectionError, RuntimeError):
            pass
        return response

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = dict(request.headers)
        ok = any(verified(s, body, headers) for s in self.secrets)
        with self._lock:
            self.received.append(Received(request.path, headers, body, time.time(), ok))
            queue = self.script.get(request.path)
            answer = queue.popleft() if queue else Answer()
        if answer.delay:
            await asyncio.sleep(answer.delay)
        if answer.endless:
            return await self._endless(request, answer)
        return web.Response(status=answer.status, headers=answer.headers, text="merci")

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()

    def start(self) -> Receiver:
        if not self._thread.is_alive():
            self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._runner = None

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)

    def on(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def wait_for(self, path: str, count: int, timeout: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.on(path)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{path}: {len(self.on(path))} requests, expected {count}")
