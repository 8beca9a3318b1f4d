"""Rate limits of the pages: what may be tried how often, per address and per
key (an email, a booking request, an RDV), on ``plugins.auth_throttle``'s
counts.  A refusal is a French 429 page with Retry-After."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from aiohttp import web

from calserver.web.errors import PageError
from plugins.auth_throttle import RateLimit


@dataclass
class PageLimits:
    """One count per kind of attempt, for this process."""

    # Emails sent (verification codes): per address and per recipient.
    emails: RateLimit = field(default_factory=lambda: RateLimit(10, 900.0))
    # Codes, letters typed: per address and per thing guessed at.
    guesses: RateLimit = field(default_factory=lambda: RateLimit(10, 900.0))
    # Pages that search créneaux, per address (a crawler costs CPU).
    searches: RateLimit = field(default_factory=lambda: RateLimit(600, 60.0))


LIMITS = web.AppKey("page_limits", PageLimits)


def key_of(value: str) -> str:
    """A count's key for a value that is personal data (an email): its hash,
    so the counts in memory hold no address."""
    return hashlib.sha256(value.strip().lower().encode()).hexdigest()[:32]


def check(request: web.Request, limit: RateLimit, *keys: object) -> None:
    """Count one attempt from this address and for each key, or refuse with 429."""
    wait = limit.take(("address", request.remote or ""), *keys)
    if wait > 0:
        minutes = max(1, int(wait // 60 + 1))
        raise PageError(
            429,
            "Vous avez fait trop de tentatives. "
            f"Réessayez dans {minutes} minute{'s' if minutes > 1 else ''}.",
            retry_after=wait,
        )
