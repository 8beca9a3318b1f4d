"""Rate limits of the pages: what may be tried how often, per address and per
key (an email, a booking request, an RDV), on ``plugins.auth_throttle``'s
counts.  A refusal is a French 429 page with Retry-After."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from aiohttp import web

from calserver.web.errors import PageError
from plugins.auth_throttle import RateLimit


@dataclass(frozen=True)
class Limit:
    """Attempts of one kind: per address (many usagers may share one, behind
    a town hall's or a mobile network's NAT) and per thing (an email, a
    booking request), each its own count."""

    per_address: RateLimit
    per_key: RateLimit


def _limit(per_address: int, per_key: int, window: float) -> Limit:
    return Limit(RateLimit(per_address, window), RateLimit(per_key, window))


@dataclass
class PageLimits:
    """One count per kind of attempt, for this process."""

    # Verification emails: per address, and per recipient.
    emails: Limit = field(default_factory=lambda: _limit(100, 5, 900.0))
    # Codes and letters typed: per address, and per thing guessed at.
    guesses: Limit = field(default_factory=lambda: _limit(200, 10, 900.0))
    # Pages that search créneaux, per address (a crawler costs CPU).
    searches: Limit = field(default_factory=lambda: _limit(1200, 1200, 60.0))


LIMITS = web.AppKey("page_limits", PageLimits)


def key_of(value: str) -> str:
    """A count's key for a value that is personal data (an email): its hash,
    so the counts in memory hold no address."""
    return hashlib.sha256(value.strip().lower().encode()).hexdigest()[:32]


def check(request: web.Request, limit: Limit, *keys: object) -> None:
    """Count one attempt from this address and for each key, or refuse with 429."""
    wait = limit.per_address.take(("address", request.remote or ""))
    if wait <= 0 and keys:
        wait = limit.per_key.take(*keys)
    if wait > 0:
        minutes = max(1, int(wait // 60 + 1))
        raise PageError(
            429,
            "Vous avez fait trop de tentatives. "
            f"Réessayez dans {minutes} minute{'s' if minutes > 1 else ''}.",
            retry_after=wait,
        )
