"""Calls to Microsoft Graph's calendar API, one request at a time.

Every call carries a timeout, ``Prefer: IdType="ImmutableId"`` (an event's
id survives a move between folders) and a ``client-request-id``; its answer
is reduced to what the push needs: status (None when no answer came:
timeout, connection lost), JSON body, Graph's ``request-id`` for the sync
log, and ``Retry-After`` in milliseconds when Graph asked to wait.  At most
``per_mailbox`` (4, Graph's limit) requests are in flight for one mailbox,
whatever the number of tasks calling.

Calls made with the same token within ``BATCH_WINDOW_S`` of each other
leave together as one JSON ``$batch`` (up to 20): an initial push of many
RDVs, or a reconciliation deleting many strays, costs one round trip per 20
calls instead of one each.  Each call still gets its own ``Answer`` from its
own sub-response (a 429 inside a batch carries its ``Retry-After``); a call
alone when the window closes goes as a plain request.  The sub-requests hold
their mailbox's slots while the batch is on the wire, since Graph runs them
side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
import uuid
from collections import defaultdict
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp

from m365.event import PROPERTY_ID
from webhooks.retry import retry_after_ms

PER_MAILBOX = 4
BATCH_MAX = 20  # Graph's limit of requests in one $batch
BATCH_WINDOW_S = 0.02  # a push is not urgent to the millisecond


@dataclass(frozen=True)
class Answer:
    status: int | None
    body: dict[str, Any] | None
    request_id: str | None
    retry_after_ms: int | None
    duration_ms: int
    error: str | None = None

    @property
    def throttled(self) -> bool:
        return self.status in (429, 503, 504) or self.status is None


@dataclass
class _Waiting:
    """A call queued for the next batch of its token."""

    method: str
    url: str  # relative to the Graph version root, query included
    headers: dict[str, str]
    body: dict[str, Any] | None
    answer: asyncio.Future[Answer] = field(repr=False)


class GraphClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        graph_url: str,
        timeout_s: float,
        per_mailbox: int = PER_MAILBOX,
        batching: bool = True,
    ) -> None:
        self.session = session
        self.graph_url = graph_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.batching = batching
        self.batches = 0  # $batch requests sent
        self._gates: dict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(per_mailbox)
        )
        self._waiting: dict[str, list[_Waiting]] = {}
        self._flushes: set[asyncio.Task[None]] = set()

    def events_url(self, mailbox: str, event_id: str | None = None, me: bool = False) -> str:
        """``/users/{mailbox}/events`` (an application token), or
        ``/me/events`` (a delegated token: the signed-in account's)."""
        owner = "me" if me else f"users/{quote(mailbox, safe='@')}"
        url = f"{self.graph_url}/{owner}/events"
        return url if event_id is None else f"{url}/{quote(event_id, safe='')}"

    async def call(
        self,
        token: str,
        mailbox: str,
        method: str,
        url: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        zone: str | None = None,
    ) -> Answer:
        headers = {
            "Authorization": f"Bearer {token}",
            "Prefer": 'IdType="ImmutableId"',
            "client-request-id": str(uuid.uuid4()),
            "return-client-request-id": "true",
        }
        if zone:
            headers["Prefer"] += f', outlook.timezone="{zone}", outlook.body-content-type="text"'
        async with self._gates[mailbox]:
            if self.batching and url.startswith(self.graph_url + "/"):
                relative = url[len(self.graph_url) :]
                if params:
                    relative += "?" + urlencode(params)
                return await self._queue(token, method, relative, headers, body)
            return await self._send(token, method, url, body, params, headers)

    async def _send(
        self,
        token: str,
        method: str,
        url: str,
        body: dict[str, Any] | None,
        params: dict[str, str] | None,
        headers: dict[str, str],
    ) -> Answer:
        started = time.monotonic()
        try:
            async with self.session.request(
                method, url, json=body, params=params, headers=headers, timeout=self.timeout
            ) as response:
                found = _json(await response.read())
                duration = int((time.monotonic() - started) * 1000)
                return Answer(
                    response.status,
                    found if isinstance(found, dict) else None,
                    response.headers.get("request-id"),
                    retry_after_ms(response.headers.get("Retry-After")),
                    duration,
                )
        except (TimeoutError, aiohttp.ClientError, ValueError) as e:
            duration = int((time.monotonic() - started) * 1000)
            return Answer(None, None, None, None, duration, type(e).__name__)

    async def _queue(
        self,
        token: str,
        method: str,
        relative: str,
        headers: dict[str, str],
        body: dict[str, Any] | None,
    ) -> Answer:
        answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        waiting = self._waiting.setdefault(token, [])
        waiting.append(_Waiting(method, relative, headers, body, answer))
        if len(waiting) >= BATCH_MAX:  # full: it leaves now
            self._spawn(self._flush(token, self._waiting.pop(token)))
        elif len(waiting) == 1:
            self._spawn(self._flush_later(token))
        return await answer

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _flush_later(self, token: str) -> None:
        """What waits for this token when the window closes (a batch that
        filled up meanwhile has left already)."""
        await asyncio.sleep(BATCH_WINDOW_S)
        taken = self._waiting.pop(token, [])
        if taken:
            await self._flush(token, taken)

    async def _flush(self, token: str, taken: list[_Waiting]) -> None:
        try:
            if len(taken) == 1:
                one = taken[0]
                url = self.graph_url + one.url
                answer = await self._send(token, one.method, url, one.body, None, one.headers)
                one.answer.set_result(answer)
                return
            for one, answer in zip(taken, await self._batch(token, taken), strict=True):
                one.answer.set_result(answer)
        except BaseException as e:  # cancelled at shutdown: the callers learn it
            for one in taken:
                if not one.answer.done():
                    one.answer.set_exception(e)
            raise

    async def _batch(self, token: str, taken: list[_Waiting]) -> list[Answer]:
        """One ``$batch``; each call's answer from its own sub-response, or
        the batch's failure for all when the batch itself failed."""
        requests = []
        for n, one in enumerate(taken):
            sub: dict[str, Any] = {"id": str(n), "method": one.method, "url": one.url}
            headers = {k: v for k, v in one.headers.items() if k != "Authorization"}
            if one.body is not None:
                sub["body"] = one.body
                headers["Content-Type"] = "application/json"
            sub["headers"] = headers
            requests.append(sub)
        self.batches += 1
        whole = await self._send(
            token,
            "POST",
            f"{self.graph_url}/$batch",
            {"requests": requests},
            None,
            {"Authorization": f"Bearer {token}", "client-request-id": str(uuid.uuid4())},
        )
        found = (whole.body or {}).get("responses") if whole.status == 200 else None
        if not isinstance(found, list):
            return [whole] * len(taken)
        by_id = {str(r.get("id")): r for r in found if isinstance(r, dict)}
        answers = []
        for n in range(len(taken)):
            sub = by_id.get(str(n))
            if sub is None:
                answers.append(
                    Answer(None, None, whole.request_id, None, whole.duration_ms, "lost in batch")
                )
                continue
            sub_headers = {str(k).lower(): str(v) for k, v in (sub.get("headers") or {}).items()}
            body = sub.get("body")
            answers.append(
                Answer(
                    int(sub.get("status") or 0) or None,
                    body if isinstance(body, dict) else None,
                    sub_headers.get("request-id") or whole.request_id,
                    retry_after_ms(sub_headers.get("retry-after")),
                    whole.duration_ms,
                )
            )
        return answers

    async def close(self) -> None:
        """Wait for the batches already leaving."""
        if self._flushes:
            with contextlib.suppress(Exception):
                await asyncio.gather(*self._flushes, return_exceptions=True)

    async def our_events(
        self, token: str, mailbox: str, zone: str, me: bool = False
    ) -> tuple[list[dict[str, Any]] | None, Answer]:
        """Every event of the mailbox carrying our property (following
        ``@odata.nextLink``); None with the failing answer when a page failed."""
        wanted = (
            f"singleValueExtendedProperties/Any(ep: ep/id eq '{PROPERTY_ID}' and ep/value ne null)"
        )
        params: dict[str, str] | None = {
            "$filter": wanted,
            "$expand": f"singleValueExtendedProperties($filter=id eq '{PROPERTY_ID}')",
            "$top": "100",
        }
        url = self.events_url(mailbox, me=me)
        found: list[dict[str, Any]] = []
        while True:
            answer = await self.call(token, mailbox, "GET", url, params=params, zone=zone)
            if answer.status != 200 or answer.body is None:
                return None, answer
            found.extend(answer.body.get("value", []))
            next_link = answer.body.get("@odata.nextLink")
            if not next_link:
                return found, answer
            url, params = next_link, None


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None  # not JSON (a proxy's page): the status says enough


def ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """The system's trust store, or ``ca_bundle`` when configured."""
    return (
        ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()
    )
