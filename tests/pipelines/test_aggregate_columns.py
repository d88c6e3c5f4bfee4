"""The columnar windows give exactly the features of the row-wise windows, on messy input.

Random polls mix nodes, out-of-order and late samples, per-sample timestamps and
idle closes; both aggregators see the same stream and must emit the same
feature rows and the same commit floors.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from pipelines.transforms.aggregate import TumblingWindows
from pipelines.transforms.aggregate_columns import ColumnarWindows
from pipelines.transforms.metric_columns import MetricColumns


def _poll(batches):
    """batches: [(node, batch_ts, partition, offset, [(gpu, metric, value, ts)])]"""
    cols = MetricColumns()
    ts, gpu, value, batch = [], [], [], []
    for b, (node, bts, part, off, samples) in enumerate(batches):
        cols.batch_node.append(node)
        for g, m, v, t in samples:
            ts.append(t), gpu.append(g), value.append(v), batch.append(b)
            cols.node.append(node), cols.uuid.append(f"GPU-{g}"), cols.metric.append(m)
            cols.unit.append(""), cols.labels.append({})
    cols.ts, cols.gpu, cols.value = np.array(ts, float), np.array(gpu, np.int16), np.array(value, float)
    cols.batch = np.array(batch, np.int32)
    cols.batch_ts = np.array([b[1] for b in batches], float)
    cols.batch_partition = np.array([b[2] for b in batches], np.int32)
    cols.batch_offset = np.array([b[3] for b in batches], np.int64)
    return cols


def _key(r):
    return (r.window_start, r.node, r.gpu, r.metric)


def _same(rows_a, rows_b):
    a, b = sorted(rows_a, key=_key), sorted(rows_b, key=_key)
    assert [_key(r) for r in a] == [_key(r) for r in b]
    for x, y in zip(a, b):
        assert (x.uuid, x.count, x.min, x.max, x.last) == (y.uuid, y.count, y.min, y.max, y.last), (x, y)
        assert x.mean == pytest.approx(y.mean, rel=1e-12) and x.p95 == pytest.approx(y.p95, rel=1e-12)


@pytest.mark.parametrize("seed,batches_per_poll", [(s, 7) for s in range(6)] + [(s, 1) for s in range(6, 9)])
def test_columnar_windows_match_row_windows(seed, batches_per_poll):
    rng = random.Random(seed)
    rows_w, cols_w = TumblingWindows(60, grace_s=5), ColumnarWindows(60, grace_s=5)
    clock = {f"n{i}": 1_000_000.0 + rng.random() * 30 for i in range(5)}
    offset = {0: 0, 1: 0}
    out_rows, out_cols = [], []
    for _ in range(120):
        poll = []
        for _ in range(rng.randrange(1, batches_per_poll + 1)):
            node = rng.choice(list(clock))
            clock[node] += rng.choice([1.0, 1.0, 1.0, 7.0, 45.0])
            bts = clock[node] - (rng.random() * 90 if rng.random() < 0.1 else 0.0)  # sometimes late
            part = int(node[1:]) % 2
            offset[part] += 1
            samples = []
            for g in range(rng.randrange(1, 4)):
                for m in ("temp", "util", "power")[: rng.randrange(1, 4)]:
                    t = bts + (rng.uniform(-3, 3) if rng.random() < 0.3 else 0.0)
                    samples.append((g, m, round(rng.uniform(0, 100), rng.choice([0, 3])), t))
            poll.append((node, bts, part, offset[part], samples))
        for node, bts, part, off, samples in poll:
            out_rows += rows_w.add(node, bts, [(g, f"GPU-{g}", m, v) for g, m, v, _ in samples],
                                   partition=part, offset=off, sample_ts=[t for *_, t in samples])
        out_cols += cols_w.add(_poll(poll))
        assert rows_w.floor(0) == cols_w.floor(0) and rows_w.floor(1) == cols_w.floor(1)
        if rng.random() < 0.05:
            later = 1e12
            out_rows += rows_w.close_idle(later)
            out_cols += cols_w.close_idle(later)
    _same(out_rows, out_cols)
    assert rows_w.late_samples == cols_w.late_samples and rows_w.late_samples > 0
    assert len(out_rows) > 100


def test_a_node_scraping_the_same_series_every_time_gets_the_same_features_as_row_windows():
    """One batch per poll, the live path: the node's layout repeats, changes, and comes back."""
    rows_w, cols_w = TumblingWindows(60, grace_s=0), ColumnarWindows(60, grace_s=0)
    layouts = [[(g, m) for g in range(4) for m in ("temp", "util")], [(g, m) for g in (1, 0) for m in ("util",)]]
    out_rows, out_cols = [], []
    for tick in range(400):
        layout = layouts[1] if 100 <= tick < 130 else layouts[0]
        ts = 1_000_000.0 + tick
        samples = [(g, m, float((tick * 7 + g * 3) % 97), ts) for g, m in layout]
        out_rows += rows_w.add("n1", ts, [(g, f"GPU-{g}", m, v) for g, m, v, _ in samples], partition=0, offset=tick)
        out_cols += cols_w.add(_poll([("n1", ts, 0, tick, samples)]))
    _same(out_rows, out_cols)
    assert len(out_rows) > 40


def test_open_series_are_counted_like_the_row_windows():
    rows_w, cols_w = TumblingWindows(60, grace_s=0), ColumnarWindows(60, grace_s=0)
    for tick, layout in enumerate([[(0, "temp"), (1, "temp")], [(0, "temp"), (1, "temp")], [(2, "util")]]):
        samples = [(g, m, 1.0, 1_000_000.0 + tick) for g, m in layout]
        rows_w.add("n1", 1_000_000.0 + tick, [(g, f"GPU-{g}", m, v) for g, m, v, _ in samples], partition=0,
                   offset=tick)
        cols_w.add(_poll([("n1", 1_000_000.0 + tick, 0, tick, samples)]))
        assert cols_w.open_series() == rows_w.open_series()
    assert cols_w.open_series() == 3
