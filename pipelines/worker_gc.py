"""Garbage-collector policy for a long-running pipeline worker: few collections, and short ones.

Why: the log path allocates a few small objects per line (a decoded record, a
row tuple, a labels dict), and the sinks hold tens of thousands of rows between
flushes. With CPython's default thresholds (700, 10, 10) the cyclic collector
rescans those buffers and every object made at start-up (modules, Faust's
tables, the template tree) over and over: about a quarter of the log path's CPU
(``bench/log_throughput.py --default-gc``). None of those objects form cycles
that need collecting quickly, so a worker freezes what start-up made (the
collector never scans it again) and runs the youngest generation less often.

That alone leaves the oldest generation growing while the worker runs: every
series' window and detector state (lists and deques of floats) ends up there,
and a full collection walks every reference in it. Run in-process on 64 nodes
of 8 GPUs with CPython's default thresholds, one full collection stopped the
metrics processor for 0.25-0.45 s, and a page that arrives during one waits for
it; the worker's own thresholds make them rarer, not shorter, and the state
keeps growing with the fleet. So the worker also *freezes what survives*: every
``GPUWATCH_GC_FREEZE_INTERVAL_S`` it collects the young generations (short:
only what was made since the last freeze) and freezes the survivors, so the
generation a full collection walks stays small. Cycles among frozen objects
are not collected until the next :func:`full_collection`, which a worker runs
rarely (hourly by default): a bounded leak of the few cycles that were alive
at a freeze, against a pause per full collection that grew with the fleet.

Each collection's pause is timed (:class:`GcPauses`): the
``gpuwatch_gc_pause_seconds`` histogram per generation, and a warning for a
pause long enough to delay a page.

>>> import gc
>>> before = gc.get_threshold()
>>> tune_gc_for_streaming(); gc.get_threshold()[0]
50000
>>> gc.set_threshold(*before); gc.unfreeze()
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

from prometheus_client import Histogram

from pipelines import telemetry

log = logging.getLogger("gpuwatch.gc")

#: Allocations between collections of the youngest generation (CPython's default: 700).
YOUNG_THRESHOLD = 50_000
#: A pause this long is logged: it delays every page waiting behind it.
SLOW_PAUSE_S = 0.2

GC_PAUSE = Histogram("gpuwatch_gc_pause_seconds", "How long each garbage collection stopped the worker",
                     ["generation"], registry=telemetry.REGISTRY,
                     buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))


def tune_gc_for_streaming(young: int = YOUNG_THRESHOLD) -> None:
    """Collect once, freeze everything alive now, and collect the young generation every ``young`` allocations."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(young, 20, 20)


def freeze_survivors() -> None:
    """Collect the young generations, then freeze what survived.

    Returns nothing: ``gc.get_freeze_count()`` walks every frozen object (20 ms per 1.5 M of them), and
    a worker freezing every few seconds must not pay that for a number nobody reads."""
    gc.collect(1)
    gc.freeze()


def full_collection() -> int:
    """Unfreeze and collect everything (cycles among frozen objects too), then freeze again; returns objects freed."""
    gc.unfreeze()
    freed = gc.collect()
    gc.freeze()
    return freed


class GcPauses:
    """Times every collection (a ``gc.callbacks`` hook): a histogram per generation, the longest, slow ones logged."""

    def __init__(self, slow_s: float = SLOW_PAUSE_S) -> None:
        self.slow_s = slow_s
        self.longest = 0.0
        self._started = 0.0
        self._slow: list[tuple[int, float, int]] = []

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause = time.perf_counter() - self._started
        generation = info.get("generation", -1)
        GC_PAUSE.labels(str(generation)).observe(pause)
        self.longest = max(self.longest, pause)
        if pause >= self.slow_s and len(self._slow) < 100:
            self._slow.append((generation, pause, info.get("collected", 0)))

    def report_slow(self) -> None:
        """Log the slow pauses seen since the last call (never from inside a collection: logging takes locks)."""
        slow, self._slow = self._slow, []
        for generation, pause, freed in slow:
            log.warning("garbage collection of generation %d paused the worker %.0f ms (%d objects freed)",
                        generation, pause * 1000, freed)

    def install(self) -> "GcPauses":
        if self not in gc.callbacks:
            gc.callbacks.append(self)
        return self


#: The worker's one timer of collections (installed by the app; one per process, however many apps a test makes).
GC_PAUSES = GcPauses()

__all__ = ["GC_PAUSE", "GC_PAUSES", "GcPauses", "YOUNG_THRESHOLD", "freeze_survivors", "full_collection",
           "tune_gc_for_streaming"]
