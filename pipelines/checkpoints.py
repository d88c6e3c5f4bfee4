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
from typing import Any, Iterable

import orjson

from pipelines.context import PipelineContext
from pipelines.detect.node_absence import NodeAbsence
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


class AbsenceCheckpoints:
    """Node absence state (last heartbeat, usual interval) in a changelog-backed table, per node.

    Written on every heartbeat, inside the heartbeat's event, so the entry lands
    on the node's partition. After a restart or an assignment, :meth:`restore`
    watches the nodes of the assigned partitions again, so a node that went
    silent just before is still paged; entries of partitions this worker does
    not own are ignored (the in-memory table may still hold them after a revocation). Values are compact and versioned:
    ``[1, last_seen, interval_s, partition]``.
    """

    VERSION = 1

    def __init__(self, table: Any, absence: NodeAbsence, forget_after_s: float = 6 * 3600.0) -> None:
        self.table, self.absence = table, absence
        self.forget_after_s = forget_after_s

    def heartbeat(self, node: str, ts: float, interval_s: float, partition: int) -> None:
        self.absence.heartbeat(node, ts, interval_s)
        state = self.absence.state(node)
        if state is not None:
            self.table[node] = orjson.dumps([self.VERSION, state[0], state[1], partition])

    def restore(self, owned_partitions: Iterable[int], now: float) -> list[str]:
        """Watch every checkpointed node of ``owned_partitions`` not watched yet; returns them."""
        owned = set(owned_partitions)
        watched = set(self.absence.nodes())
        restored = []
        for node, raw in list(self.table.items()):
            try:
                version, last_seen, interval_s, partition = orjson.loads(raw)
            except (ValueError, TypeError):
                continue  # an entry of another version or a damaged one: the node's next heartbeat rebuilds it
            if (version != self.VERSION or partition not in owned or node in watched
                    or now - last_seen > self.forget_after_s):
                continue
            self.absence.restore(node, float(last_seen), float(interval_s))
            restored.append(node)
        return restored
