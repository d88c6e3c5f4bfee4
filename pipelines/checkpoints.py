"""Per-node state written to changelog-backed Faust tables, so a restarted or new owner resumes it.

Incident books are written whenever they change; detector state at most every
``interval_s`` per node. Both are zlib'd pickles keyed by node. See
docs/state.md for every piece of per-node state and what happens to it on
restart, assignment and revocation.
"""

from __future__ import annotations

import pickle
import time
import zlib
from typing import Any

from pipelines.context import PipelineContext
from pipelines.processors.metrics import MetricsProcessor


def freeze(obj: Any) -> bytes:
    return zlib.compress(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), 1)


def thaw(raw: bytes | None) -> Any:
    return pickle.loads(zlib.decompress(raw)) if raw else None


class Checkpoints:
    """Writes changed incident books and, every ``interval_s``, detector state to their tables.

    A Faust table write lands on the changelog partition of the event being
    processed, so only state of nodes living on that partition is written.
    """

    def __init__(self, incidents: Any, detectors: Any, metrics: MetricsProcessor, ctx: PipelineContext,
                 interval_s: float) -> None:
        self.incidents, self.detectors, self.metrics, self.ctx = incidents, detectors, metrics, ctx
        self.interval_s = interval_s
        self._last: dict[str, float] = {}

    def write(self, partition: int) -> None:
        ctx = self.ctx
        for node in [n for n in ctx.dirty_books if ctx.node_partition.get(n) == partition]:
            self.incidents[node] = freeze(ctx.books[node])
            ctx.dirty_books.discard(node)
        node = self.metrics.last_node
        if node is None or ctx.node_partition.get(node) != partition:
            return
        now = time.monotonic()
        if now - self._last.get(node, 0.0) >= self.interval_s and node in self.metrics.detectors:
            self.detectors[node] = freeze(self.metrics.detectors[node])
            self._last[node] = now
