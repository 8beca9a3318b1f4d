"""Backoff with jitter for about three days, Retry-After honoured."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from webhooks.retry import DAY_MS, RetryPolicy, retry_after_ms

POLICY = RetryPolicy(first_ms=10_000)


def test_the_wait_doubles_with_jitter_and_is_capped() -> None:
    assert POLICY.next_attempt_ms(1, 0, 0, rand=lambda: 0.0) == 5_000
    assert POLICY.next_attempt_ms(1, 0, 0, rand=lambda: 1.0) == 10_000
    assert POLICY.next_attempt_ms(3, 0, 0, rand=lambda: 1.0) == 40_000
    capped = POLICY.next_attempt_ms(30, 0, 0, rand=lambda: 1.0)
    assert capped == POLICY.max_delay_ms


def test_retries_last_about_three_days_then_give_up() -> None:
    now, attempt = 0, 1
    while (at := POLICY.next_attempt_ms(attempt, 0, now, rand=lambda: 1.0)) is not None:
        now, attempt = at, attempt + 1
    assert 2.7 * DAY_MS < now <= 3 * DAY_MS and 20 <= attempt <= 30


def test_retry_after_is_a_floor() -> None:
    assert POLICY.next_attempt_ms(1, 0, 0, retry_after_ms=120_000) == 120_000
    assert POLICY.next_attempt_ms(8, 0, 0, retry_after_ms=1_000, rand=lambda: 0.0) == 640_000
    assert retry_after_ms("120") == 120_000
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert retry_after_ms(format_datetime(now + timedelta(minutes=5)), now) == 300_000
    assert retry_after_ms("soon") is None and retry_after_ms(None) is None
