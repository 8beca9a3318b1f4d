"""The login throttle on plain data, with a clock the test moves."""

from __future__ import annotations

import pytest

from plugins.auth_throttle import Limits, RateLimit, Throttle

LIMITS = Limits(
    pair_free=3,
    address_free=6,
    login_slow_after=8,
    login_delay=1.0,
    first_backoff=2.0,
    max_backoff=60.0,
    forget_after=600.0,
    max_keys=50,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def throttle(clock: Clock) -> Throttle:
    return Throttle(LIMITS, clock)


def _fail(throttle: Throttle, login: str, address: str, times: int) -> None:
    for _ in range(times):
        throttle.failed(login, address)


def test_backoff_starts_after_the_free_failures_and_doubles(
    throttle: Throttle, clock: Clock
) -> None:
    _fail(throttle, "alice", "10.0.0.1", 2)
    assert throttle.retry_after("alice", "10.0.0.1") == 0
    throttle.failed("alice", "10.0.0.1")
    assert throttle.retry_after("alice", "10.0.0.1") == 2.0
    clock.now += 1.5
    assert throttle.retry_after("alice", "10.0.0.1") == pytest.approx(0.5)
    clock.now += 0.5
    assert throttle.retry_after("alice", "10.0.0.1") == 0
    throttle.failed("alice", "10.0.0.1")
    assert throttle.retry_after("alice", "10.0.0.1") == 4.0
    _fail(throttle, "alice", "10.0.0.1", 20)
    assert throttle.retry_after("alice", "10.0.0.1") == LIMITS.max_backoff


def test_the_owner_elsewhere_and_other_logins_here_are_not_held_back(throttle: Throttle) -> None:
    _fail(throttle, "alice", "10.0.0.1", 5)
    assert throttle.retry_after("alice", "10.0.0.1") > 0
    assert throttle.retry_after("alice", "10.0.0.2") == 0  # no lockout of the owner
    assert throttle.retry_after("bob", "10.0.0.1") == 0  # under the address budget


def test_an_address_spraying_many_logins_is_held_back(throttle: Throttle) -> None:
    for n in range(LIMITS.address_free):
        throttle.failed(f"user{n}", "10.0.0.9")
    assert throttle.retry_after("someone-new", "10.0.0.9") > 0
    assert throttle.retry_after("someone-new", "10.0.0.8") == 0


def test_a_login_failing_from_everywhere_is_slowed_never_refused(throttle: Throttle) -> None:
    for n in range(LIMITS.login_slow_after):
        throttle.failed("alice", f"10.0.1.{n}")
    assert throttle.login_delay("alice") == LIMITS.login_delay
    assert throttle.retry_after("alice", "10.0.2.1") == 0
    assert throttle.login_delay("bob") == 0


def test_success_forgets_the_pair_but_not_the_address(throttle: Throttle) -> None:
    _fail(throttle, "alice", "10.0.0.1", 3)
    _fail(throttle, "bob", "10.0.0.1", 2)
    throttle.succeeded("alice", "10.0.0.1")
    assert throttle.retry_after("alice", "10.0.0.1") == 0
    throttle.failed("carol", "10.0.0.1")  # sixth failure from the address
    assert throttle.retry_after("alice", "10.0.0.1") > 0


def test_failures_are_forgotten_after_a_quiet_period(throttle: Throttle, clock: Clock) -> None:
    _fail(throttle, "alice", "10.0.0.1", 10)
    clock.now += LIMITS.forget_after + 1
    assert throttle.retry_after("alice", "10.0.0.1") == 0
    throttle.failed("alice", "10.0.0.1")
    assert throttle.retry_after("alice", "10.0.0.1") == 0  # counting starts afresh


def test_memory_is_bounded_dropping_the_oldest(throttle: Throttle) -> None:
    _fail(throttle, "old", "10.9.9.9", 3)
    for n in range(LIMITS.max_keys):
        throttle.failed(f"spray{n}", f"10.1.{n // 250}.{n % 250}")
    assert throttle.retry_after("old", "10.9.9.9") == 0
    assert len(throttle._pairs._by_key) == LIMITS.max_keys


def test_a_rate_limit_refuses_past_its_allowance_until_a_quiet_window(clock: Clock) -> None:
    limit = RateLimit(3, 60.0, clock=clock)
    assert [limit.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limit.take("a") == 60.0  # refused, and not counted
    assert limit.take("b") == 0.0  # another key has its own count
    clock.now += 30
    assert limit.take("a") == 30.0  # knocking does not push the window back
    clock.now += 31
    assert limit.take("a") == 0.0
    assert limit.take("a", "c") == 0.0 and limit.take("a", "c") == 0.0
    assert limit.take("c") == 0.0 and limit.take("c") > 0  # "c" counted with "a"
