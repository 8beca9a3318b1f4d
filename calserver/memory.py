"""Bound how much memory the C allocator keeps per thread.

glibc gives each thread that allocates concurrently its own arena (up to eight
per core) and rarely returns their pages to the system.  CalDAV requests run in
a pool of threads and a listing of a large agenda allocates tens of megabytes:
with the default, each thread ends up holding its own copy of that peak.  Two
arenas is what Python servers commonly use (``MALLOC_ARENA_MAX=2``); set
through ``mallopt`` so that it holds however the server is started.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_ARENA_MAX = -8  # from glibc's malloc.h


def limit_malloc_arenas(count: int = 2) -> bool:
    """Apply the limit; False where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    libc = ctypes.CDLL(name)
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(M_ARENA_MAX, count))
