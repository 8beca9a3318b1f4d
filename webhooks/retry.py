"""When to try a failed delivery again: exponential backoff with jitter for
about three days, never sooner than the receiver's ``Retry-After``."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

DAY_MS = 86_400_000


@dataclass(frozen=True)
class RetryPolicy:
    first_ms: int = 10_000  # the wait after the first failure, doubled each time
    max_delay_ms: int = 6 * 3_600_000
    give_up_after_ms: int = 3 * DAY_MS

    def next_attempt_ms(
        self,
        attempt: int,
        created_ms: int,
        now_ms: int,
        retry_after_ms: int | None = None,
        rand: Callable[[], float] = random.random,
    ) -> int | None:
        """When to try again after failed attempt number ``attempt`` (1, 2...),
        or None once the delivery is older than ``give_up_after_ms``.  The wait
        is drawn in [half, all] of the doubled delay ("equal jitter"), so that
        deliveries failing together do not come back together."""
        delay = min(self.max_delay_ms, self.first_ms * 2 ** min(attempt - 1, 40))
        wait = delay // 2 + int(rand() * (delay - delay // 2))
        if retry_after_ms is not None:
            wait = max(wait, min(retry_after_ms, DAY_MS))
        at = now_ms + wait
        return None if at - created_ms > self.give_up_after_ms else at


def retry_after_ms(header: str | None, now: datetime | None = None) -> int | None:
    """A ``Retry-After`` value (seconds or an HTTP date) in milliseconds from now."""
    if not header:
        return None
    value = header.strip()
    if value.isdigit():
        return int(value) * 1000
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0, int((moment - (now or datetime.now(UTC))).total_seconds() * 1000))
