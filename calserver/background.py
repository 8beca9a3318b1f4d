"""Threads whose work may wait: they run at the lowest CPU priority.

Password verifications and créneaux searches are the two kinds of work a
client can ask for in bulk.  A verification is an argon2 hash, which releases
the interpreter lock and so takes a whole core: on a small machine two
guessing clients keep both cores busy hashing, and the threads that answer
known clients (the event loop, the CalDAV and API threads, the database's own
processes) then share the cores with them evenly.  A search computes in
Python, holding the lock but for its switch interval, and its database reads
compete with everyone's.  At the lowest priority these threads get what the
others leave: a known client's request is served first, and verifications and
searches still run whenever a core is free.  (A search thread holding the
interpreter lock must be scheduled to hand it over; measured beside a busy
machine, the lowest priority still left the other clients faster, see
docs/hardening.md.)

On Linux a nice value belongs to a thread (setpriority(2)), so lowering it in
the thread itself leaves the rest of the process alone.  Elsewhere this does
nothing.
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

LOWEST = 19


def _lower_own_priority() -> None:
    # Not Linux, or not allowed: the thread runs as it is.
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOWEST)


def background_pool(workers: int, name: str) -> ThreadPoolExecutor:
    """A thread pool whose threads run at the lowest CPU priority."""
    return ThreadPoolExecutor(
        max_workers=workers, thread_name_prefix=name, initializer=_lower_own_priority
    )
