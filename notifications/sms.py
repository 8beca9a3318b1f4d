"""SMS through a provider adapter.

The adapter interface is ``SmsProvider``: one coroutine, ``send(to, text)``,
given an E.164 mobile number and a GSM-7 text (``notifications.gsm``), that
answers an ``Outcome`` (sent with the provider's message id, retry, or
failed).  A second provider is a small module with a class of that shape and
one line in ``PROVIDERS``; its settings come from ``[sms]`` (url, token,
sender, timeout_seconds).

``JsonHttpProvider`` is a generic JSON-over-HTTP API:
``POST <url>`` with ``Authorization: Bearer <token>`` and
``{"to": "+336...", "text": "...", "sender": "..."}``; a 2xx answer means
sent, whatever its body (its JSON ``id``, if any, is the provider's message
id).  5xx, 429, timeouts and refused
connections are temporary; another 4xx is permanent (the provider refuses
this message).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from notifications.outcome import Outcome, failed, retry, sent


@dataclass(frozen=True)
class SmsSettings:
    provider: str = "none"  # none / json_http
    url: str = ""
    token: str = ""
    sender: str = ""
    timeout_s: float = 10.0
    max_segments: int = 3  # a longer text is shortened, else refused


class SmsProvider(Protocol):
    """What the worker needs of an SMS provider."""

    async def send(self, to: str, text: str) -> Outcome:
        """Send ``text`` (GSM-7) to ``to`` (E.164 mobile)."""
        ...

    async def close(self) -> None:
        """Release connections (the worker is stopping)."""
        ...


def _message_id(body: bytes) -> str | None:
    """The provider's message id in a 2xx answer, when it gives one as JSON
    (a body of "OK" still means the SMS was accepted: never sent twice)."""
    try:
        found = json.loads(body)
    except ValueError:
        return None
    provider_id = found.get("id") if isinstance(found, dict) else None
    return str(provider_id) if provider_id is not None else None


class JsonHttpProvider:
    def __init__(self, settings: SmsSettings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {self._settings.token}"}
            )
        return self._session

    async def send(self, to: str, text: str) -> Outcome:
        body = {"to": to, "text": text, "sender": self._settings.sender}
        try:
            async with self._client().post(
                self._settings.url,
                json=body,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self._settings.timeout_s),
            ) as answer:
                status = answer.status
                body = await answer.read() if 200 <= status < 300 else b""
        except TimeoutError:
            return retry(f"SMS provider: no answer within {self._settings.timeout_s:g} s")
        except (aiohttp.ClientError, OSError) as e:
            return retry(f"SMS provider: {type(e).__name__}")
        if 200 <= status < 300:  # accepted, whatever the body says
            return sent(_message_id(body))
        if status >= 500 or status == 429:
            return retry(f"SMS provider answered {status}")
        return failed(f"SMS provider answered {status}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


PROVIDERS: dict[str, type[JsonHttpProvider]] = {"json_http": JsonHttpProvider}


def provider(settings: SmsSettings) -> SmsProvider | None:
    """The configured provider, or None when SMS are off."""
    factory = PROVIDERS.get(settings.provider)
    return factory(settings) if factory is not None else None
