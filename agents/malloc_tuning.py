"""Tell glibc's malloc to give freed memory back, so the agent's RSS stays near what it uses.

Every scrape the agent builds and frees a few buffers of 100 kB to 1 MB (the
encoded metric batch, a second of log lines, their JSON). glibc serves the
first one with ``mmap`` and, once it is freed, raises its mmap threshold to
that size, so later ones come from the heap, whose free top is kept up to the
(equally raised) trim threshold; worker threads each get a heap of their
own. Measured under the overhead benchmark's load, that is 4-5 MB of the
agent's RSS holding nothing.

Fixing both thresholds turns the raising off: buffers of 128 kB and more are
mapped and unmapped as they come and go, and a free heap top past 256 kB is
returned. Two arenas are plenty for a process whose threads mostly wait. On a
C library without ``mallopt`` (musl) this does nothing.

>>> return_freed_memory() in (True, False)
True
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger("gpuwatch.agent")

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8

MMAP_THRESHOLD_BYTES = 128 * 1024
TRIM_THRESHOLD_BYTES = 256 * 1024
ARENA_MAX = 2


def return_freed_memory() -> bool:
    """Set the thresholds (before worker threads start, so they share the arenas); False where not glibc."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own symbols: libc's, without a library search
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = all(mallopt(param, value) == 1 for param, value in ((_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES),
                                                           (_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES),
                                                           (_M_ARENA_MAX, ARENA_MAX)))
    if not ok:
        log.debug("mallopt refused a setting; the C library keeps its defaults")
    return ok


__all__ = ["return_freed_memory"]
