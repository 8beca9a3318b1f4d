"""One webhook request: sent through a guarded connection, its outcome told
as the delivery log records it.

The connector's resolver keeps only the addresses ``TargetPolicy`` allows, so
the check is made on the addresses actually connected to (a name that
resolves to a private address, or changes to one, is refused); an address
written in the URL is checked before sending.  Redirects are never followed:
a 3xx fails the delivery for good at once (trying again for days would only
get the same redirect).  The answer's body is read up to 500 bytes, and the
request has a total timeout.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from storage.deliveries import Attempt
from webhooks.retry import retry_after_ms
from webhooks.targets import TargetPolicy, TargetRefused

EXCERPT_BYTES = 500
USER_AGENT = "calserver-webhooks/1"


class AddressRefused(OSError):
    """A target whose addresses the policy refuses."""


class GuardedResolver(AbstractResolver):
    """aiohttp's threaded resolver, keeping only allowed addresses."""

    def __init__(self, policy: TargetPolicy) -> None:
        self._inner = aiohttp.ThreadedResolver()
        self._policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        allowed = [r for r in found if self._policy.address_allowed(r["host"])]
        if not allowed:
            raise AddressRefused(f"{host} resolves to no address webhooks may reach")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def session(policy: TargetPolicy, connections: int = 50) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(policy), limit=connections)
    return aiohttp.ClientSession(connector=connector, headers={"User-Agent": USER_AGENT})


@dataclass(frozen=True)
class Outcome:
    attempt: Attempt
    delivered: bool
    gone: bool  # 410: the endpoint is disabled
    retry_after_ms: int | None
    permanent: bool = False  # no point trying again: the delivery is failed at once


def _refusal(error: BaseException) -> str | None:
    """The policy's reason when a connection failed because of it."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, AddressRefused | TargetRefused):
            return str(current)
        current = getattr(current, "os_error", None) or current.__cause__
    return None


async def send(
    client: aiohttp.ClientSession,
    policy: TargetPolicy,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout_s: float,
) -> Outcome:
    started = time.time_ns() // 1_000_000
    clock = time.monotonic()

    def failed(error: str, status: int | None = None, **kw: Any) -> Outcome:
        attempt = Attempt(
            started, int((time.monotonic() - clock) * 1000), status, error[:200],
            kw.get("excerpt"),
        )  # fmt: skip
        return Outcome(
            attempt,
            False,
            kw.get("gone", False),
            kw.get("retry_after"),
            kw.get("permanent", False),
        )

    try:
        policy.check_url(url)
        async with client.post(
            url,
            data=body,
            headers={**headers, "Content-Type": "application/json; charset=utf-8"},
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        ) as answer:
            excerpt = (await answer.content.read(EXCERPT_BYTES)).decode("utf-8", "replace")
            status = answer.status
            retry_after = retry_after_ms(answer.headers.get("Retry-After"))
    except TargetRefused as e:
        return failed(f"refused target: {e}")
    except TimeoutError:
        return failed(f"no answer within {timeout_s:g} s")
    except (aiohttp.ClientError, OSError) as e:
        reason = _refusal(e)
        return failed(
            f"refused target: {reason}" if reason else f"connection failed: {type(e).__name__}"
        )
    if 200 <= status < 300:
        attempt = Attempt(started, int((time.monotonic() - clock) * 1000), status, None, excerpt)
        return Outcome(attempt, True, False, None)
    if 300 <= status < 400:
        return failed(
            f"answered {status}: redirect not followed, given up",
            status,
            excerpt=excerpt,
            permanent=True,
        )
    return failed(
        f"answered {status}", status, excerpt=excerpt, gone=status == 410, retry_after=retry_after
    )
