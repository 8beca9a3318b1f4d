"""Backoff after repeated wrong passwords, without handing attackers a lockout.

Three counts of recent failures, each forgotten after a quiet period:

- per (login, address): after ``pair_free`` failures, each further attempt of
  that login from that address waits an exponentially growing time (429 with
  Retry-After).  This stops guessing one password from one place, and only
  there: the owner of the login, from another address, is not affected.
- per address: after ``address_free`` failures, whatever the logins, that
  address waits the same way.  This stops one place spraying many logins.
- per login, from everywhere: after ``login_slow_after`` failures each
  verification of that login first waits ``login_delay`` seconds.  A login
  attacked from many addresses is slowed, never refused: a refusal here would
  let anyone lock a victim out by failing on purpose.

Credentials already verified in this process (the success cache of
``plugins.auth``) skip the throttle altogether, so the owner of an attacked
login, or a colleague behind the attacker's address, keeps working.  A
success forgets the failures of that (login, address) only: an attacker
holding one valid account cannot use it to reset its address.

Plain data and an injected clock; the counts are per process.

``RateLimit`` is the same bounded, forgetting count used the other way round
(the public pages' verification emails, codes and letter checks): each
attempt counts, whether it succeeds or not, and past ``allowed`` attempts of
one key within a quiet period the key waits until the period has passed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    pair_free: int = 10
    address_free: int = 30
    login_slow_after: int = 100
    login_delay: float = 1.0
    first_backoff: float = 1.0
    max_backoff: float = 300.0
    # A count with no new failure for this long starts afresh.
    forget_after: float = 900.0
    # Most keys kept per count; the least recently failing go first.
    max_keys: int = 100_000


@dataclass
class _Failures:
    count: int
    last: float


class _Counts:
    """Failures per key, most recent last (dict order), bounded in size."""

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._by_key: dict[object, _Failures] = {}

    def get(self, key: object, now: float) -> _Failures | None:
        found = self._by_key.get(key)
        if found is not None and now - found.last > self._limits.forget_after:
            del self._by_key[key]
            return None
        return found

    def add(self, key: object, now: float) -> None:
        found = self.get(key, now)
        self._by_key.pop(key, None)
        self._by_key[key] = _Failures((found.count if found else 0) + 1, now)
        while len(self._by_key) > self._limits.max_keys:
            del self._by_key[next(iter(self._by_key))]

    def forget(self, key: object) -> None:
        self._by_key.pop(key, None)


class Throttle:
    def __init__(
        self, limits: Limits | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits or Limits()
        self._clock = clock
        self._lock = threading.Lock()
        self._pairs = _Counts(self.limits)
        self._addresses = _Counts(self.limits)
        self._logins = _Counts(self.limits)

    def retry_after(self, login: str, address: str) -> float:
        """Seconds before a password of ``login`` from ``address`` may be
        checked again; 0 when it may be checked now."""
        with self._lock:
            now = self._clock()
            return max(
                self._wait(self._pairs.get((login, address), now), self.limits.pair_free, now),
                self._wait(self._addresses.get(address, now), self.limits.address_free, now),
            )

    def login_delay(self, login: str) -> float:
        """Seconds to wait before checking a password of ``login``: a login
        failing from everywhere is slowed down, never refused."""
        with self._lock:
            found = self._logins.get(login, self._clock())
        if found is None or found.count < self.limits.login_slow_after:
            return 0.0
        return self.limits.login_delay

    def failed(self, login: str, address: str) -> None:
        with self._lock:
            now = self._clock()
            self._pairs.add((login, address), now)
            self._addresses.add(address, now)
            self._logins.add(login, now)

    def succeeded(self, login: str, address: str) -> None:
        with self._lock:
            self._pairs.forget((login, address))

    def _wait(self, failures: _Failures | None, free: int, now: float) -> float:
        if failures is None or failures.count < free:
            return 0.0
        backoff = self.limits.first_backoff * 2.0 ** min(failures.count - free, 30)
        return max(0.0, failures.last + min(backoff, self.limits.max_backoff) - now)


class RateLimit:
    """At most ``allowed`` attempts per key: past that, a key waits until
    ``window`` seconds have passed without an attempt (the count is then
    forgotten).  Refused attempts are not counted, so a waiting key is freed on
    time however often it knocks."""

    def __init__(
        self,
        allowed: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.allowed = allowed
        self._clock = clock
        self._lock = threading.Lock()
        self._counts = _Counts(Limits(forget_after=window, max_keys=max_keys))
        self._window = window

    def take(self, *keys: object) -> float:
        """Count one attempt for every key and return 0, or, when one of the
        keys has had its ``allowed`` attempts, count nothing and return the
        seconds until it may try again."""
        with self._lock:
            now = self._clock()
            waits = []
            for key in keys:
                found = self._counts.get(key, now)
                if found is not None and found.count >= self.allowed:
                    waits.append(found.last + self._window - now)
            if waits:
                return max(0.0, *waits)
            for key in keys:
                self._counts.add(key, now)
            return 0.0
