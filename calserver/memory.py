"""Keep the C allocator from holding on to what large requests freed.

glibc gives each thread that allocates concurrently its own arena (up to eight
per core) and rarely returns their pages to the system.  CalDAV requests run in
a pool of threads and a listing of a large agenda allocates tens of megabytes:
with the defaults, each thread ends up holding its own copy of that peak.
Three settings, applied through ``mallopt``/``malloc_trim`` so that they hold
however the server is started:

- at most two arenas (what Python servers commonly use, ``MALLOC_ARENA_MAX=2``);
- a fixed mmap threshold: glibc raises it to the size of each large block freed
  (up to 32 MiB), after which the next answer's buffers come from the heap,
  whose free pages stay resident; with it fixed, large buffers are mapped on
  their own and unmapped when freed;
- after a request that left the process much larger than the last time,
  ``malloc_trim`` hands the free pages of every arena back (it costs about a
  millisecond, so it is not done after every request).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading

M_TRIM_THRESHOLD = -1  # from glibc's malloc.h
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD = 128 * 1024  # glibc's initial value, kept
GROWTH_BEFORE_TRIM = 8 * 1024 * 1024
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    libc = ctypes.CDLL(name)
    if getattr(libc, "mallopt", None) is None or getattr(libc, "malloc_trim", None) is None:
        return None
    return libc


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE


class Allocator:
    """The process's glibc allocator, tuned; every call is a no-op elsewhere."""

    def __init__(self) -> None:
        self._libc = _glibc()
        self._lock = threading.Lock()
        self._trimmed_at = 0

    def tune(self, arenas: int = 2) -> bool:
        """Apply the arena limit and the fixed thresholds; False where the C
        library is not glibc."""
        if self._libc is None:
            return False
        return all(
            self._libc.mallopt(option, value)
            for option, value in (
                (M_ARENA_MAX, arenas),
                (M_MMAP_THRESHOLD, MMAP_THRESHOLD),
                (M_TRIM_THRESHOLD, MMAP_THRESHOLD),
            )
        )

    def trim_if_grown(self) -> bool:
        """Return free pages to the system when the process has grown by
        ``GROWTH_BEFORE_TRIM`` since the last trim; True when it trimmed."""
        if self._libc is None or _resident_bytes() - self._trimmed_at < GROWTH_BEFORE_TRIM:
            return False
        if not self._lock.acquire(blocking=False):
            return False  # another request thread is trimming
        try:
            self._libc.malloc_trim(0)
            self._trimmed_at = _resident_bytes()
        finally:
            self._lock.release()
        return True


allocator = Allocator()
