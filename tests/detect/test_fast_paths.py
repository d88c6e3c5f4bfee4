"""The hot path's shortcuts give exactly what the general code gives (issue 10).

Each shortcut is checked against the code it stands in for on input built to
leave the usual case: series warming up, flagged runs and re-baselines,
non-finite values, seasonal profiles, one-sided directions, a GPU whose samples
come in two runs, node-level job samples.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.detect.engine import _group_samples
from pipelines.detect.robust_zscore import RobustZScore

STATE = ("_level", "_scale", "_count", "_flagged_run", "_tail", "_season", "_season_seen")


def _series(rng: np.random.Generator, ticks: int, n: int) -> np.ndarray:
    """Noisy levels with a lasting shift, spikes and the odd NaN: quiet ticks and every kind of loud one."""
    x = 50 + rng.normal(0, 1, (ticks, n))
    x[ticks // 2:, : n // 3] += 15                       # a regime change: flagged runs, then a re-baseline
    spikes = rng.random((ticks, n)) < 0.01
    x[spikes] += 40
    x[rng.random((ticks, n)) < 0.002] = np.nan
    return x


@pytest.mark.parametrize("params", [
    {},
    {"season_s": 3600.0, "season_bins": 12, "direction": "up"},
    {"tail_decay": 0.99, "flagged_scale": 0.5, "direction": "down", "adapt_after": 25},
    {"warmup": 0, "rel_scale": 0.01},
])
def test_quiet_learning_is_the_general_learning(params):
    rng = np.random.default_rng(7)
    ticks, n = 600, 40
    x = _series(rng, ticks, n)
    params = {"warmup": 30, **params}
    fast, general = RobustZScore(**params), RobustZScore(**params)
    general._learn_quiet = None  # never taken: the general path learns every tick
    general._learn = lambda idx, values, resid, absr, scale, count, z, p, finite, bin_: general._learn_general(
        idx, values, resid, absr, scale, count, p, finite, bin_, absr >= p[:, 6] * scale, count < p[:, 5])
    quiet_ticks = []
    real = fast._learn_quiet
    fast._learn_quiet = lambda *a: (quiet_ticks.append(1), real(*a))
    keys = [(g, f"m{g}") for g in range(n)]
    for t in range(ticks):
        ts = 1.7e9 + 60.0 * t
        zf = fast.step(fast.slots(keys), x[t], ts)
        zg = general.step(general.slots(keys), x[t], ts)
        np.testing.assert_array_equal(zf, zg)
    for name in STATE:
        if hasattr(general, name):
            np.testing.assert_array_equal(getattr(fast, name)[:n], getattr(general, name)[:n], err_msg=name)
    assert len(quiet_ticks) > ticks // 10  # the shortcut was taken, and often


@pytest.mark.parametrize("params", [
    {},
    {"season_s": 3600.0, "season_bins": 12, "direction": "up"},
    {"tail_decay": 0.99, "flagged_scale": 0.5, "direction": "down", "adapt_after": 25},
])
def test_series_in_a_row_stepped_by_slice_are_stepped_as_by_positions(params):
    rng = np.random.default_rng(11)
    ticks, n = 500, 30
    x = _series(rng, ticks, n)
    params = {"warmup": 30, "adapt_after": 25, **params}
    by_slice, by_positions = RobustZScore(**params), RobustZScore(**params)
    other = [("other", i) for i in range(5)]  # series before and after the row, never stepped
    for d in (by_slice, by_positions):
        d.slots(other[:2])
        d.slots([(g, "m") for g in range(n)])
        d.slots(other[2:])
    rebased = 0
    for t in range(ticks):
        ts = 1.7e9 + 60.0 * t
        before = by_positions._count[2:2 + n].copy()
        zs = by_slice.step(slice(2, 2 + n), x[t], ts)
        zp = by_positions.step(np.arange(2, 2 + n), x[t], ts)
        np.testing.assert_array_equal(zs, zp)
        rebased += int((by_positions._count[2:2 + n] < before).sum())
    for name in STATE:
        if hasattr(by_positions, name):
            np.testing.assert_array_equal(getattr(by_slice, name), getattr(by_positions, name), err_msg=name)
    # the re-baseline, which indexes the row by a mask, was taken (flagged points widening the scale end the run)
    assert rebased or params.get("flagged_scale")


def test_tier1_tick_plan_scores_as_the_general_path():
    """A node's usual tick goes through its cached plan; the same ticks through the general path agree."""
    import time

    from agents.simulator import Fault, SimulatedCluster
    from pipelines.detect import new_node_detectors

    faults = [Fault.parse("thermal_runaway@node-0/3:60+80"), Fault.parse("ecc_storm@node-0/2:70+40"),
              Fault.parse("xid79@node-0/5:150")]
    sim = SimulatedCluster(nodes=1, gpus=8, seed=5, start_ts=time.time() - 400, faults=faults)
    planned, general = new_node_detectors(node="node-0"), new_node_detectors(node="node-0")
    general._tick_plan = lambda gpus: None
    for _ in range(260):
        b = sim.tick()[0][0]
        s = b["samples"]
        args = (b["node"], b["ts"], [x["gpu"] for x in s], [x["metric"] for x in s], [x["value"] for x in s],
                [x.get("labels", {}) for x in s])
        a, g = planned.observe_columns(*args), general.observe_columns(*args)
        assert a.scores == g.scores
        assert [(c.alertname, c.labels, c.annotations) for c in a.conditions] == \
            [(c.alertname, c.labels, c.annotations) for c in g.conditions]
    assert planned.__dict__.get("_tplan") is not None and general.__dict__.get("_tplan") is None


def _grouped_one_by_one(gpu, metric, value, labels):
    """The per-sample loop that ``_group_samples`` replaced: the meaning it must keep."""
    gpus, gpu_job, jobs, labelled = {}, {}, {}, set()
    for g, m, v, lab in zip(gpu, metric, value, labels):
        if g < 0 and m.startswith("job_"):
            jobs.setdefault(lab.get("job", "") if lab else "", {})[m] = v
            continue
        gpus.setdefault(g, {})[m] = v
        if lab and g >= 0:
            labelled.add(g)
            if lab.get("job"):
                gpu_job[g] = lab["job"]
    return gpus, gpu_job, jobs, labelled


def test_grouping_runs_of_samples_keeps_the_per_sample_meaning():
    rows = [
        (-1, "host_cpu_pct", 3.0, {}),
        (0, "gpu_util", 90.0, {"job": "a"}), (0, "gpu_temp_c", 60.0, {"job": "a"}),
        (1, "gpu_util", 10.0, {}), (1, "gpu_temp_c", 40.0, {"pod": "x"}),
        (0, "gpu_util", 91.0, {"job": "b"}), (0, "mem_used", 1.0, {}),   # GPU 0 again: later values, job b
        (2, "gpu_util", 50.0, {"job": "c"}), (2, "gpu_temp_c", 55.0, {"job": "d"}),  # the run's last job counts,
        (2, "gpu_util", 56.0, {"job": ""}),                                       # and an empty job is no job
        (-1, "job_loss", 2.5, {"job": "a"}), (-1, "job_loss", 2.6, None), (-1, "job_step", 7.0, {"job": "a"}),
        (-1, "host_mem_pct", 30.0, {"job": "a"}),
    ]
    gpu, metric, value, labels = (list(c) for c in zip(*rows))
    want = _grouped_one_by_one(gpu, metric, value, labels)
    for g in (gpu, np.array(gpu, dtype=np.int16)):
        got = _group_samples(g, metric, value, labels)
        assert got == want
        assert [list(d) for d in got[0].values()] == [list(d) for d in want[0].values()]  # same order
        assert list(got[0]) == list(want[0])
    assert _group_samples([], [], [], []) == ({}, {}, {}, set())


def test_a_peer_group_answers_a_tick_twice_from_one_judgement_and_never_from_a_stale_one():
    from pipelines.detect.peer_group import PeerGroup

    rng = np.random.default_rng(3)
    memo, plain = PeerGroup(warmup=5, max_median_step=5.0, settle_ticks=3), PeerGroup(warmup=5,
                                                                                    max_median_step=5.0,
                                                                                    settle_ticks=3)
    plain._residuals = plain._judge  # judges every time
    same = {str(g): 60.0 + g for g in range(8)}
    for t in range(120):
        # the same readings tick after tick (only learning changes the answer), then noise, a jump, a hot GPU
        x = dict(same) if t < 40 else {str(g): 60.0 + g + rng.normal(0, 1) + 10 * (t > 80) for g in range(8)}
        if t % 17 == 0:
            x["3"] += 25
        for d in (memo, plain):
            d.score_many(x)
        assert memo.score_many(x) == plain.score_many(x)
        memo.learn_one(x)
        plain.learn_one(x)
        assert memo.score_many(x) == plain.score_many(x)  # learning was not answered from the memo
        if t == 60:
            memo.forget("5")
            plain.forget("5")
    import pickle
    assert "_memo" not in pickle.loads(pickle.dumps(memo)).__dict__


def test_job_health_learns_a_scored_tick_as_an_unscored_one():
    """learn_one reuses the scores score_many just gave; learning without scoring first is the reference."""
    import pickle

    from pipelines.detect.job_health import JobHealth

    rng = np.random.default_rng(3)
    scored, plain = JobHealth(warmup=10), JobHealth(warmup=10)
    step = 0.0
    for t in range(400):
        step = 0.0 if t == 250 else step + 1.0  # a restart resets the state between scoring and learning
        loss = 3.0 * np.exp(-t / 200) + rng.normal(0, 0.02) + (0.02 * (t - 150) if 150 < t < 200 else 0.0)
        x = {"job_step": step, "job_loss": float("nan") if t == 120 else float(loss),
             "job_grad_norm": float(1 + rng.random()), "job_tokens_per_s": float(25_000 + rng.normal(0, 300))}
        assert scored.score_many(x) == plain.score_many(x)
        if t % 7 == 0:  # scored on other readings last: those scores are not the tick's
            scored.score_many({**x, "job_loss": 50.0, "job_tokens_per_s": 10.0})
        scored.learn_one(x)
        plain.__dict__.pop("_memo", None)
        plain.learn_one(x)
    assert pickle.dumps(scored) == pickle.dumps(plain)


@pytest.mark.parametrize("make", ["counter_burst", "error_trend"])
def test_scoring_and_learning_in_one_pass_is_scoring_then_learning(make):
    """score_then_learn gives score_many's answer and leaves learn_one's state, through bursts and flags."""
    import pickle

    from pipelines.detect.counter_burst import CounterBurst
    from pipelines.detect.error_trend import ErrorTrend

    def build():
        return CounterBurst(window_s=10, warmup_s=20) if make == "counter_burst" else ErrorTrend(warmup_s=30)

    rng = np.random.default_rng(9)
    fused, reference = build(), build()
    flagged = 0
    for t in range(1, 900):
        burst = 300 < t < 330 or 600 < t < 640
        x = {f"{g}/{k}": float(rng.poisson(5.0 if burst and g == 1 else 0.002)) for g in range(3)
             for k in ("ecc_sbe_rate", "pcie_replay_rate")} if make == "counter_burst" else {
            "ecc_sbe_rate": float(rng.poisson(4.0 if burst else 0.001)), "pcie_link_width": 8.0 if t > 700 else 16.0,
            "pcie_link_gen": 5.0, "gpu_util_pct": 90.0, "remapped_rows_pending": float(t > 800)}
        if t == 400:
            x = {**x, "new_series": 0.0}
        want = reference.score_many(x, float(t))
        reference.learn_one(x, float(t))
        assert fused.score_then_learn(x, float(t)) == want
        flagged += any(s >= reference.threshold for s in want.values())
    assert pickle.dumps(fused) == pickle.dumps(reference)
    assert flagged > 5


def test_exhaustion_learns_then_scores_in_one_call_as_in_two():
    import pickle

    from pipelines.detect.exhaustion import Exhaustion

    rng = np.random.default_rng(4)
    one, two = Exhaustion(window=10, warmup=5), Exhaustion(window=10, warmup=5)
    used, seen = 20.0, []
    for t in range(300):
        used = used + (0.15 if 100 < t < 250 else rng.normal(0, 0.01))  # flat, a leak towards full, flat again
        x = {"used": used, "free": max(80.0 - used, 0.0)} if t != 50 else {"used": float("nan"), "free": 1.0}
        two.learn_one(x, float(t))
        want = two.score_one(x, float(t))
        assert one.learn_then_score(x, float(t)) == want
        seen.append(want)
    assert pickle.dumps(one) == pickle.dumps(two)
    assert max(seen) >= one.threshold  # the leak was forecast


def test_a_detector_checkpointed_before_series_could_be_unseasonal_restores_and_scores_alike():
    """Checkpoints made before the ``seasonal`` series parameter hold one column fewer: every series of a
    seasonal detector was seasonal then, and still is."""
    rng = np.random.default_rng(2)
    params = {"warmup": 10, "season_s": 3600.0, "season_bins": 6}
    now, old = RobustZScore(**params), RobustZScore(**params)
    keys = [("g", i) for i in range(6)]
    x = _series(rng, 200, 6)
    for t in range(100):
        for d in (now, old):
            d.step(d.slots(keys), x[t], 1.7e9 + 60.0 * t)
    state = old.__getstate__()
    state["_params"] = state["_params"][:, :9]
    state["_defaults"] = state["_defaults"][:9]
    del state["seasonal"]
    restored = RobustZScore.__new__(RobustZScore)
    restored.__setstate__(state)
    restored.slots([("g", 6)])  # a series added after the restore takes the detector's default
    now.slots([("g", 6)])
    for t in range(100, 200):
        ts = 1.7e9 + 60.0 * t
        np.testing.assert_array_equal(restored.step(np.arange(6), x[t], ts), now.step(np.arange(6), x[t], ts))
    np.testing.assert_array_equal(restored._params[:7], now._params[:7])


def test_unseasonal_series_sharing_a_seasonal_detector_score_as_in_a_detector_of_their_own():
    rng = np.random.default_rng(8)
    x = _series(rng, 400, 8)
    shared = RobustZScore(warmup=20, season_s=3600.0, season_bins=12)
    plain = RobustZScore(warmup=20)
    seasonal = RobustZScore(warmup=20, season_s=3600.0, season_bins=12)
    shared.slots([("s", i) for i in range(4)])
    shared.slots([("p", i) for i in range(4)], {"seasonal": False})
    for t in range(400):
        ts = 1.7e9 + 60.0 * t
        z = shared.step(np.arange(8), x[t], ts)
        np.testing.assert_array_equal(z[:4], seasonal.step(seasonal.slots([("s", i) for i in range(4)]), x[t, :4], ts))
        np.testing.assert_array_equal(z[4:], plain.step(plain.slots([("p", i) for i in range(4)]), x[t, 4:], ts))
    assert not shared._season_seen[4:8].any() and shared._season_seen[:4].any()


def test_a_counter_burst_warms_when_its_oldest_series_is_warmup_old():
    """The oldest first time is kept rather than looked for every tick; a series first seen at an earlier
    time than the kept one (timestamps need not rise) moves it."""
    from pipelines.detect.counter_burst import CounterBurst

    d = CounterBurst(warmup_s=100)
    d.learn_one({"a": 0.0}, t=1000.0)
    d.learn_one({"a": 0.0}, t=1050.0)
    d.learn_one({"b": 0.0}, t=960.0)  # first seen "earlier"
    assert not d.warm
    d.learn_one({"a": 0.0, "b": 0.0}, t=1061.0)  # 101 s after b's first time, 61 after a's
    assert d.warm


@pytest.mark.parametrize("x", [
    {"0": 60.0, "1": 61.5, "2": 59.0},
    {"0": 60.0, "1": float("nan"), "2": 59.0},
    {"0": 60.0, "1": float("inf"), "2": -float("inf")},
    {"0": 60, "1": True, "2": 59.0, "3": None, "4": "x"},
    {"0": 1e308, "1": 1e308},  # finite members whose sum is not
    {},
])
def test_a_peer_groups_finite_members_are_found_alike_on_the_quick_path(x):
    import math

    from pipelines.detect.peer_group import _finite

    want = {k: float(v) for k, v in x.items() if isinstance(v, (int, float)) and math.isfinite(v)}
    got = _finite(x)
    assert got == want and all(type(v) is float for v in got.values())
