"""1-minute tumbling windows: exact features, event-time closing, and the offset floor."""

from __future__ import annotations

import numpy as np

from pipelines.transforms.aggregate import TumblingWindows


def feed(w: TumblingWindows, node: str, ts: float, value: float, offset: int, partition: int = 0):
    return w.add(node, ts, [(0, "GPU-0", "temp", value)], partition=partition, offset=offset)


def test_features_match_numpy_over_a_closed_window():
    w = TumblingWindows(size_s=60, grace_s=0)
    values = [float(v) for v in np.random.default_rng(3).normal(60, 5, 60)]
    for i, v in enumerate(values):
        assert feed(w, "n1", 120.0 + i, v, i) == []
    [row] = feed(w, "n1", 180.0, 1.0, 60)
    assert (row.window_start, row.count, row.last) == (120, 60, values[-1])
    assert row.min == min(values) and row.max == max(values)
    assert abs(row.mean - float(np.mean(values))) < 1e-9
    assert abs(row.p95 - float(np.percentile(values, 95))) < 1e-9


def test_grace_keeps_a_window_open_for_late_samples_and_counts_later_ones():
    w = TumblingWindows(size_s=60, grace_s=10)
    feed(w, "n1", 30.0, 1.0, 0)
    assert feed(w, "n1", 65.0, 2.0, 1) == []        # within grace: window [0, 60) still open
    assert feed(w, "n1", 59.0, 3.0, 2) == []        # late but in grace: counted in [0, 60)
    [row] = feed(w, "n1", 71.0, 4.0, 3)
    assert row.count == 2
    feed(w, "n1", 10.0, 5.0, 4)                     # after its window closed: late, not aggregated
    assert w.late_samples == 1


def test_nodes_have_their_own_watermarks():
    w = TumblingWindows(size_s=60, grace_s=0)
    feed(w, "fast", 0.0, 1.0, 0)
    feed(w, "slow", 0.0, 1.0, 1)
    closed = feed(w, "fast", 61.0, 1.0, 2)
    assert [r.node for r in closed] == ["fast"]     # the slow node's window stays open


def test_floor_is_the_oldest_offset_still_feeding_an_open_window():
    w = TumblingWindows(size_s=60, grace_s=0)
    feed(w, "a", 0.0, 1.0, 100, partition=3)
    feed(w, "b", 30.0, 1.0, 101, partition=3)
    feed(w, "c", 0.0, 1.0, 7, partition=4)
    assert (w.floor(3), w.floor(4), w.floor(5)) == (100, 7, None)
    feed(w, "a", 61.0, 1.0, 102, partition=3)       # a's first window closes
    assert w.floor(3) == 101


def test_idle_nodes_get_their_last_window_closed():
    w = TumblingWindows(size_s=60, grace_s=5, idle_close_s=10)
    feed(w, "n1", 0.0, 1.0, 0)
    assert w.close_idle(now_monotonic=0.0) == []
    import time

    [row] = w.close_idle(now_monotonic=time.monotonic() + 11)
    assert row.count == 1 and w.floor(0) is None


def test_windows_already_stored_before_a_restart_are_not_rebuilt_from_a_partial_replay():
    w = TumblingWindows(size_s=60, grace_s=0, written_upto={"n1": 60}.get)
    feed(w, "n1", 90.0, 1.0, 0)      # replayed sample of the stored window [60, 120)
    feed(w, "n1", 125.0, 2.0, 1)
    [row] = feed(w, "n1", 181.0, 3.0, 2)
    assert (row.window_start, row.count, row.last) == (120, 1, 2.0)
    assert w.late_samples == 1
