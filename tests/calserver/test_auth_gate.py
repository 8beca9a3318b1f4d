"""The auth gate's own behaviour under load, in process: verification threads
run at the lowest CPU priority, and a login refused because the verification
queue is full is answered after a pause (so a client looping on the 503 cannot
keep the event loop busy)."""

from __future__ import annotations

import asyncio
import base64
import os
import sys
import threading
import time

import pytest

from calserver.auth_gate import AuthGate, AuthRefused
from calserver.background import LOWEST, background_pool
from plugins.auth_throttle import Throttle


class _SlowAuth:
    """Credentials nobody knows, whose verification waits for ``release``."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def known(self, login: str, password: str) -> bool:
        return False

    def verify(self, login: str, password: str) -> bool:
        self.release.wait(10)
        return False


def _basic(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread's nice value is Linux")
def test_background_threads_run_at_the_lowest_priority() -> None:
    pool = background_pool(1, "test")
    try:
        tid = pool.submit(threading.get_native_id).result()
        assert pool.submit(os.getpriority, os.PRIO_PROCESS, tid).result() == LOWEST
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) < LOWEST
    finally:
        pool.shutdown()


async def test_a_full_queue_answers_503_after_a_pause() -> None:
    auth = _SlowAuth()
    gate = AuthGate(auth, Throttle(), verifications=1, waiting=0, busy_pause=0.3)  # type: ignore[arg-type]
    try:
        verifying = asyncio.create_task(gate.check(_basic("a", "x"), "10.0.0.1"))
        await asyncio.sleep(0.05)
        began = time.monotonic()
        with pytest.raises(AuthRefused) as refused:
            await gate.check(_basic("b", "y"), "10.0.0.2")
        assert refused.value.status == 503 and refused.value.retry_after == 1
        assert time.monotonic() - began >= 0.3
        auth.release.set()
        with pytest.raises(AuthRefused) as wrong:
            await verifying
        assert wrong.value.status == 401
    finally:
        auth.release.set()
        gate.close()
