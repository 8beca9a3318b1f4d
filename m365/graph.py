"""Calls to Microsoft Graph's calendar API, one request at a time.

Every call carries a timeout, ``Prefer: IdType="ImmutableId"`` (an event's
id survives a move between folders) and a ``client-request-id``; its answer
is reduced to what the push needs: status (None when no answer came:
timeout, connection lost), JSON body, Graph's ``request-id`` for the sync
log, and ``Retry-After`` in milliseconds when Graph asked to wait.  At most
``per_mailbox`` (4, Graph's limit) requests are in flight for one mailbox,
whatever the number of tasks calling.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from m365.event import PROPERTY_ID
from webhooks.retry import retry_after_ms

PER_MAILBOX = 4


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


class GraphClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        graph_url: str,
        timeout_s: float,
        per_mailbox: int = PER_MAILBOX,
    ) -> None:
        self.session = session
        self.graph_url = graph_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._gates: dict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(per_mailbox)
        )

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
        started = time.monotonic()
        async with self._gates[mailbox]:
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
