"""Each GPU read on its own thread: a slow or hung GPU costs a scrape at most a budget, never the others.

NVML calls run in C through ctypes, which releases the GIL, so GPUs read in
parallel: a scrape costs about the slowest GPU's time, not the sum (PCIe
throughput alone holds a GPU for ~42 ms of wall time). Each GPU has its own
worker thread, so a call that hangs in the driver (a failing GPU can stall
its management calls for seconds, or for good) ties up only that GPU.

A scrape waits at most ``budget_s`` for all reads. A GPU still reading is
left out of that scrape and not asked again until its read returns. A read
outstanding for ``hang_s`` makes the GPU *not answering*; its next completed
read makes it *answering again*. The collector turns both into events.

>>> reads = ParallelReads(budget_s=1.0, hang_s=5.0)
>>> r = reads.run({"gpu0": lambda: 42})
>>> r.done["gpu0"].result(), r.late, r.hung
(42, [], [])
>>> reads.close()
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable


@dataclass
class _Worker:
    pool: ThreadPoolExecutor
    future: Future | None = None
    since: float = 0.0
    hung: bool = False


@dataclass
class Round:
    """What one scrape's reads came to, by key."""

    #: Reads that finished within the budget (``.result()`` returns or raises what the read did).
    done: dict[Hashable, Future] = field(default_factory=dict)
    #: Started this scrape, not finished within the budget.
    late: list[Hashable] = field(default_factory=list)
    #: Not started: the previous read is still running.
    busy: list[Hashable] = field(default_factory=list)
    #: Newly past ``hang_s`` (reported once per hang), with how long they have been reading.
    hung: list[tuple[Hashable, float]] = field(default_factory=list)
    #: Were hung; a read has completed since.
    recovered: list[Hashable] = field(default_factory=list)


class ParallelReads:
    def __init__(self, budget_s: float, hang_s: float) -> None:
        self.budget_s = budget_s
        self.hang_s = hang_s
        self._workers: dict[Hashable, _Worker] = {}

    def run(self, jobs: dict[Hashable, Callable[[], Any]]) -> Round:
        out = Round()
        mono = time.monotonic()
        started: dict[Hashable, Future] = {}
        for key, job in jobs.items():
            w = self._workers.get(key)
            if w is None:
                w = self._workers[key] = _Worker(ThreadPoolExecutor(1, thread_name_prefix=f"nvml-{key}"))
            if w.future is not None and not w.future.done():
                out.busy.append(key)
                if not w.hung and mono - w.since >= self.hang_s:
                    w.hung = True
                    out.hung.append((key, mono - w.since))
                continue
            w.future, w.since = w.pool.submit(job), mono
            started[key] = w.future
        if started:
            wait(started.values(), timeout=self.budget_s)
        for key, f in started.items():
            w = self._workers[key]
            if not f.done():
                out.late.append(key)
                continue
            out.done[key] = f
            if w.hung:
                w.hung = False
                out.recovered.append(key)
        return out

    def any_busy(self) -> bool:
        """Is some read still running? Then the driver may be stalled: ask it nothing on this thread."""
        return any(w.future is not None and not w.future.done() for w in self._workers.values())

    def forget(self, key: Hashable) -> None:
        """Stop tracking a GPU (it left the bus); a read stuck on it is abandoned, not waited for."""
        w = self._workers.pop(key, None)
        if w is not None:
            w.pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        for key in list(self._workers):
            self.forget(key)
