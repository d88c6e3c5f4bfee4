"""1-minute tumbling-window features over column batches: the columnar twin of ``aggregate.py``.

Same semantics as :class:`pipelines.transforms.aggregate.TumblingWindows`
(event time, a per-node watermark ``newest - grace_s``, late samples counted
and dropped, the oldest Kafka offset feeding an open window as the commit
floor), but a whole poll of batches goes in at once as
:class:`~pipelines.transforms.metric_columns.MetricColumns`: samples are kept
as numpy chunks per (node, window), and a closing window is reduced with
sorts and ``reduceat``, never a Python loop per sample.

>>> import numpy as np
>>> from pipelines.transforms.metric_columns import MetricColumns
>>> def poll(ts, value, offset):
...     return MetricColumns(ts=np.array([ts]), gpu=np.array([0], np.int16), value=np.array([value]),
...                          batch=np.array([0], np.int32), node=["n1"], uuid=["GPU-0"], metric=["temp"],
...                          unit=[""], labels=[{}], batch_node=["n1"], batch_ts=np.array([ts]),
...                          batch_partition=np.array([0], np.int32), batch_offset=np.array([offset]))
>>> w = ColumnarWindows(size_s=60, grace_s=0)
>>> w.add(poll(0.0, 50.0, 10))
[]
>>> rows = w.add(poll(61.0, 70.0, 11))
>>> [(r.window_start, r.metric, r.count, r.last) for r in rows], w.floor(0)
([(0, 'temp', 1, 50.0)], 11)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from pipelines.transforms.aggregate import FeatureRow
from pipelines.transforms.metric_columns import MetricColumns


@dataclass
class _Window:
    first_offset: int
    series: list[np.ndarray] = field(default_factory=list)
    values: list[np.ndarray] = field(default_factory=list)
    ts: list[np.ndarray] = field(default_factory=list)
    #: distinct series codes so far (updated only when a chunk's series differ from the last one's)
    distinct: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))

    def add(self, codes: np.ndarray, values: np.ndarray, ts: np.ndarray) -> None:
        if not self.series or not np.array_equal(codes, self.series[-1]):
            self.distinct = np.union1d(self.distinct, codes)
        self.series.append(codes)
        self.values.append(values)
        self.ts.append(ts)


@dataclass
class _NodeState:
    partition: int
    watermark: float = -math.inf
    last_wall: float = 0.0
    open: dict[int, _Window] = field(default_factory=dict)


class ColumnarWindows:
    def __init__(self, size_s: int = 60, grace_s: float = 5.0, idle_close_s: float = 10.0,
                 written_upto=None) -> None:
        if size_s <= 0:
            raise ValueError("window size must be positive")
        self.size_s = int(size_s)
        self.grace_s = grace_s
        self.idle_close_s = idle_close_s
        self.written_upto = written_upto
        self.late_samples = 0
        self._nodes: dict[str, _NodeState] = {}
        #: series code -> (gpu, uuid, metric); codes are global to the worker
        self._series: list[tuple[int, str, str]] = []
        self._series_code: dict[tuple[int, str, str], int] = {}
        #: node -> (gpus, metrics, uuids, codes) of its last single-batch poll
        self._layouts: dict[str, tuple[list, list, list, np.ndarray]] = {}

    def add(self, cols: MetricColumns) -> list[FeatureRow]:
        """Add a poll's samples; returns the features of every window that closed."""
        n_batches = len(cols.batch_node)
        if not n_batches:
            return []
        codes = self._codes(cols)
        starts = (np.floor_divide(cols.ts, self.size_s) * self.size_s).astype(np.int64)
        if n_batches == 1 and len(starts):
            rows = self._add_one(cols, codes, starts)
            if rows is not None:
                return rows
        bounds = np.searchsorted(cols.batch, np.arange(n_batches + 1))
        newest = cols.batch_ts.copy()
        nonempty = bounds[:-1] < bounds[1:]
        newest[nonempty] = np.maximum(newest[nonempty], np.maximum.reduceat(cols.ts, bounds[:-1][nonempty]))
        # Per batch, in arrival order: the watermark its node had before it (what is late) and after.
        closed_before = np.empty(n_batches)
        wall = time.monotonic()
        for b, node in enumerate(cols.batch_node):
            ns = self._node(node, int(cols.batch_partition[b]))
            ns.last_wall = wall
            closed_before[b] = ns.watermark
            ns.watermark = max(ns.watermark, newest[b] - self.grace_s)
        late = starts + self.size_s <= closed_before[cols.batch]
        self.late_samples += int(late.sum())
        keep = ~late
        for b, node in enumerate(cols.batch_node):
            lo, hi = bounds[b], bounds[b + 1]
            if lo == hi:
                continue
            k = keep[lo:hi]
            if not k.any():
                continue
            self._append(self._nodes[node], int(cols.batch_offset[b]), starts[lo:hi][k], codes[lo:hi][k],
                         cols.value[lo:hi][k], cols.ts[lo:hi][k])
        rows: list[FeatureRow] = []
        for node in dict.fromkeys(cols.batch_node):
            ns = self._nodes[node]
            rows.extend(self._close(node, ns, ns.watermark))
        return rows

    def _add_one(self, cols: MetricColumns, codes: np.ndarray, starts: np.ndarray) -> list[FeatureRow] | None:
        """:meth:`add` of the usual poll: one batch whose samples all fall in one window (None when they
        do not). The window is the same for every sample, so nothing is split per window or per batch: a
        third of the array operations (issue 10)."""
        start = int(starts[0])
        if starts.min() != start or starts.max() != start:
            return None
        node = cols.batch_node[0]
        ns = self._node(node, int(cols.batch_partition[0]))
        ns.last_wall = time.monotonic()
        closed_before = ns.watermark
        ns.watermark = max(ns.watermark, max(cols.batch_ts[0], cols.ts.max()) - self.grace_s)
        if start + self.size_s <= closed_before:  # late, all of it
            self.late_samples += len(starts)
        else:
            w = ns.open.get(start)
            if w is None:
                w = ns.open[start] = _Window(int(cols.batch_offset[0]))
            w.add(codes, cols.value, cols.ts)
        return self._close(node, ns, ns.watermark)

    def close_idle(self, now_monotonic: float | None = None) -> list[FeatureRow]:
        now = time.monotonic() if now_monotonic is None else now_monotonic
        rows: list[FeatureRow] = []
        for node, ns in self._nodes.items():
            if ns.open and now - ns.last_wall >= self.idle_close_s:
                newest_end = max(ns.open) + self.size_s
                rows.extend(self._close(node, ns, math.inf))
                ns.watermark = max(ns.watermark, newest_end)
        return rows

    def floor(self, partition: int) -> int | None:
        firsts = [w.first_offset for ns in self._nodes.values() if ns.partition == partition
                  for w in ns.open.values()]
        return min(firsts) if firsts else None

    def open_series(self) -> int:
        """Distinct series with samples in an open window (for the health page)."""
        return sum(w.distinct.size for ns in self._nodes.values() for w in ns.open.values())

    def forget_partition(self, partition: int) -> None:
        for node in [n for n, ns in self._nodes.items() if ns.partition == partition]:
            del self._nodes[node]
            self._layouts.pop(node, None)

    # -- internals

    def _node(self, node: str, partition: int) -> _NodeState:
        ns = self._nodes.get(node)
        if ns is None:
            ns = self._nodes[node] = _NodeState(partition)
            last_written = self.written_upto(node) if self.written_upto else None
            if last_written is not None:
                ns.watermark = last_written + self.size_s
        ns.partition = partition
        return ns

    def _codes(self, cols: MetricColumns) -> np.ndarray:
        """A global integer per series (gpu, uuid, metric), looked up once per distinct series in the poll.

        A node usually sends the same series in the same order every scrape: a poll of one batch
        laid out like that node's previous one reuses its codes (three list comparisons, no lookups).
        """
        gpus = cols.gpu.tolist()
        if len(cols.batch_node) == 1:
            node = cols.batch_node[0]
            last = self._layouts.get(node)
            if last is not None and last[0] == gpus and last[1] == cols.metric and last[2] == cols.uuid:
                return last[3]
            codes = self._lookup(gpus, cols)
            codes.flags.writeable = False  # kept by every window chunk of the node's polls alike
            self._layouts[node] = (gpus, cols.metric, cols.uuid, codes)
            return codes
        return self._lookup(gpus, cols)

    def _lookup(self, gpus: list[int], cols: MetricColumns) -> np.ndarray:
        keys = list(zip(gpus, cols.uuid, cols.metric))
        table = self._series_code
        distinct = dict.fromkeys(keys)
        for key in distinct:
            code = table.get(key)
            if code is None:
                code = table[key] = len(self._series)
                self._series.append(key)
            distinct[key] = code
        return np.fromiter((distinct[k] for k in keys), np.int64, count=len(keys))

    def _append(self, ns: _NodeState, offset: int, starts: np.ndarray, codes: np.ndarray, values: np.ndarray,
                ts: np.ndarray) -> None:
        for start in np.unique(starts).tolist():
            m = starts == start
            w = ns.open.get(start)
            if w is None:
                w = ns.open[start] = _Window(offset)
            w.add(codes[m], values[m], ts[m])

    def _close(self, node: str, ns: _NodeState, upto: float) -> list[FeatureRow]:
        rows: list[FeatureRow] = []
        for start in sorted(s for s in ns.open if s + self.size_s <= upto):
            rows.extend(self._reduce(node, start, ns.open.pop(start)))
        return rows

    def _reduce(self, node: str, start: int, w: _Window) -> list[FeatureRow]:
        series = np.concatenate(w.series)
        values = np.concatenate(w.values)
        ts = np.concatenate(w.ts)
        arrival = np.arange(series.size)
        by_value = np.lexsort((values, series))
        s_sorted, v_sorted = series[by_value], values[by_value]
        first = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
        counts = np.diff(np.r_[first, series.size])
        mins, maxs = v_sorted[first], v_sorted[first + counts - 1]
        means = np.add.reduceat(v_sorted, first) / counts
        rank = 0.95 * (counts - 1)
        lo = np.floor(rank).astype(np.int64)
        hi = np.minimum(lo + 1, counts - 1)
        p95 = v_sorted[first + lo] + (v_sorted[first + hi] - v_sorted[first + lo]) * (rank - lo)
        # last: the value with the newest timestamp, the later arrival winning a tie
        by_time = np.lexsort((arrival, ts, series))
        last_idx = by_time[np.r_[first[1:], series.size] - 1]
        lasts = values[last_idx]
        out = []
        for i, code in enumerate(s_sorted[first].tolist()):
            gpu, uuid, metric = self._series[code]
            out.append(FeatureRow(start, node, gpu, uuid, metric, int(counts[i]), float(mins[i]), float(maxs[i]),
                                  float(means[i]), float(lasts[i]), float(p95[i])))
        return out
