"""1-minute tumbling-window features per series, in event time.

A series is (node, gpu, metric). Windows close per node when that node's
watermark (its newest timestamp minus ``grace_s``) passes the window's end, or
when the node has been silent for ``idle_close_s`` of wall time, so a node that
stops reporting still gets its last window written.

The aggregator also answers the question the offset committer needs: *which
Kafka offset is the oldest one still needed to rebuild an open window?*
(:meth:`TumblingWindows.floor`). Offsets are committed only below it, so after
a crash the replay rebuilds every open window exactly, and the rewritten
feature rows are identical to any written before.

>>> w = TumblingWindows(size_s=60, grace_s=0)
>>> w.add("n1", 0.0, [(0, "GPU-0", "temp", 50.0)], partition=0, offset=10)
[]
>>> w.floor(0)
10
>>> rows = w.add("n1", 61.0, [(0, "GPU-0", "temp", 70.0)], partition=0, offset=11)
>>> [(r.window_start, r.metric, r.count, r.last) for r in rows]
[(0, 'temp', 1, 50.0)]
>>> w.floor(0)
11
"""

from __future__ import annotations

import math
import time
from array import array
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np


@dataclass(frozen=True, slots=True)
class FeatureRow:
    window_start: int
    node: str
    gpu: int
    uuid: str
    metric: str
    count: int
    min: float
    max: float
    mean: float
    last: float
    p95: float

    COLUMNS = ("window_start", "node", "gpu", "uuid", "metric", "count", "min", "max", "mean", "last", "p95")

    def as_tuple(self) -> tuple:
        return (self.window_start, self.node, self.gpu, self.uuid, self.metric, self.count, self.min,
                self.max, self.mean, self.last, self.p95)


class _Acc:
    __slots__ = ("uuid", "values", "last_ts", "last")

    def __init__(self, uuid: str) -> None:
        self.uuid = uuid
        self.values = array("d")
        self.last_ts = -math.inf
        self.last = 0.0

    def add(self, ts: float, value: float) -> None:
        self.values.append(value)
        if ts >= self.last_ts:
            self.last_ts, self.last = ts, value


@dataclass
class _NodeWindows:
    partition: int
    watermark: float = -math.inf
    last_wall: float = 0.0
    #: window start -> (first Kafka offset that fed it, series accumulators)
    open: dict[int, tuple[int, dict[tuple[int, str], _Acc]]] = field(default_factory=dict)


Sample = tuple[int, str, str, float]  # gpu, uuid, metric, value


class TumblingWindows:
    def __init__(self, size_s: int = 60, grace_s: float = 5.0, idle_close_s: float = 10.0,
                 written_upto: Callable[[str], int | None] | None = None) -> None:
        """``written_upto(node)`` gives the start of the newest window already stored for
        ``node`` (after a restart); replayed samples of such windows are not re-aggregated,
        since a window rebuilt from part of its samples would overwrite the complete one."""
        if size_s <= 0:
            raise ValueError("window size must be positive")
        self.written_upto = written_upto
        self.size_s = int(size_s)
        self.grace_s = grace_s
        self.idle_close_s = idle_close_s
        self._nodes: dict[str, _NodeWindows] = {}
        self.late_samples = 0

    def window_of(self, ts: float) -> int:
        return int(ts // self.size_s) * self.size_s

    def add(self, node: str, ts: float, samples: Iterable[Sample], *, partition: int, offset: int,
            sample_ts: Iterable[float] | None = None) -> list[FeatureRow]:
        """Add one scrape's samples (all at ``ts`` unless ``sample_ts`` gives each its own)."""
        nw = self._nodes.get(node)
        if nw is None:
            nw = self._nodes[node] = _NodeWindows(partition)
            last_written = self.written_upto(node) if self.written_upto else None
            if last_written is not None:
                nw.watermark = last_written + self.size_s
        nw.partition = partition
        nw.last_wall = time.monotonic()
        closed_before = nw.watermark
        stamps = iter(sample_ts) if sample_ts is not None else None
        newest = ts
        for gpu, uuid, metric, value in samples:
            t = next(stamps) if stamps is not None else ts
            newest = max(newest, t)
            start = self.window_of(t)
            if start + self.size_s <= closed_before:
                self.late_samples += 1
                continue
            slot = nw.open.get(start)
            if slot is None:
                slot = nw.open[start] = (offset, {})
            accs = slot[1]
            acc = accs.get((gpu, metric))
            if acc is None:
                acc = accs[(gpu, metric)] = _Acc(uuid)
            acc.add(t, value)
        nw.watermark = max(nw.watermark, newest - self.grace_s)
        return self._close(node, nw, nw.watermark)

    def _close(self, node: str, nw: _NodeWindows, upto: float) -> list[FeatureRow]:
        rows: list[FeatureRow] = []
        for start in sorted(s for s in nw.open if s + self.size_s <= upto):
            _, accs = nw.open.pop(start)
            for (gpu, metric), acc in accs.items():
                v = np.frombuffer(acc.values, dtype=np.float64)
                rows.append(FeatureRow(start, node, gpu, acc.uuid, metric, int(v.size), float(v.min()),
                                       float(v.max()), float(v.mean()), acc.last,
                                       float(np.percentile(v, 95, method="linear"))))
        return rows

    def close_idle(self, now_monotonic: float | None = None) -> list[FeatureRow]:
        """Close every open window of nodes silent for ``idle_close_s`` (wall time)."""
        now = time.monotonic() if now_monotonic is None else now_monotonic
        rows: list[FeatureRow] = []
        for node, nw in self._nodes.items():
            if nw.open and now - nw.last_wall >= self.idle_close_s:
                newest_end = max(nw.open) + self.size_s
                rows.extend(self._close(node, nw, math.inf))
                nw.watermark = max(nw.watermark, newest_end)
        return rows

    def floor(self, partition: int) -> int | None:
        """Oldest Kafka offset on ``partition`` still feeding an open window (None if none)."""
        firsts = [first for nw in self._nodes.values() if nw.partition == partition
                  for first, _ in nw.open.values()]
        return min(firsts) if firsts else None

    def forget_partition(self, partition: int) -> None:
        """Drop state for a partition this worker no longer owns (after a rebalance)."""
        for node in [n for n, nw in self._nodes.items() if nw.partition == partition]:
            del self._nodes[node]

    def open_series(self) -> int:
        return sum(len(accs) for nw in self._nodes.values() for _, accs in nw.open.values())
