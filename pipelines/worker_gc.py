"""Garbage-collector settings for a long-running pipeline worker.

Why: the log path allocates a few small objects per line (a decoded record, a
row tuple, a labels dict), and the sinks hold tens of thousands of rows between
flushes. With CPython's default thresholds (700, 10, 10) the cyclic collector
rescans those buffers and every object made at start-up (modules, Faust's
tables, the template tree) over and over: about a quarter of the log path's CPU
(``bench/log_throughput.py --default-gc``). None of those objects form cycles
that need collecting quickly, so a worker freezes what start-up made (the
collector never scans it again) and runs the youngest generation less often.
Memory held by real cycles is still freed, only in larger steps.

>>> import gc
>>> before = gc.get_threshold()
>>> tune_gc_for_streaming(); gc.get_threshold()[0]
50000
>>> gc.set_threshold(*before); gc.unfreeze()
"""

from __future__ import annotations

import gc

#: Allocations between collections of the youngest generation (CPython's default: 700).
YOUNG_THRESHOLD = 50_000


def tune_gc_for_streaming(young: int = YOUNG_THRESHOLD) -> None:
    """Collect once, freeze everything alive now, and collect the young generation every ``young`` allocations."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(young, 20, 20)


__all__ = ["YOUNG_THRESHOLD", "tune_gc_for_streaming"]
