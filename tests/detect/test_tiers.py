"""Behaviour of each tier that an operator would notice, beyond the shared contract."""

from __future__ import annotations

import doctest
import importlib
import math
import pickle

import numpy as np
import pytest

from pipelines.detect import (Absence, DetectionConfig, Exhaustion, GpuMultivariate, JobHealth, JobPeers,
                              JobSummary, NodeAbsence, PeerGroup, RobustZScore, Straggler)

T0 = 1_700_000_000.0
MODULES = ["base", "robust_zscore", "peer_group", "straggler", "job_health", "exhaustion", "absence",
           "gpu_multivariate", "config", "evidence", "engine", "job_peers", "node_absence", "replay",
           "counter_burst", "error_trend", "verdicts"]


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run(module):
    mod = importlib.import_module(f"pipelines.detect.{module}")
    assert doctest.testmod(mod, optionflags=doctest.ELLIPSIS).failed == 0


# -- tier 1 -----------------------------------------------------------------------------------------
def test_zscore_batch_form_scores_many_series_in_one_call():
    rng = np.random.default_rng(0)
    d = RobustZScore(warmup=20)
    idx = d.slots([f"s{i}" for i in range(1000)])
    for _ in range(50):
        d.step(idx, rng.normal(50, 1, 1000))
    tick = rng.normal(50, 1, 1000)
    tick[17] = 90.0
    z = d.step(idx, tick)
    assert z.shape == (1000,) and z.argmax() == 17 and z[17] > 6 and np.median(z) < 2


def test_zscore_adapts_to_a_lasting_level_shift_instead_of_alerting_forever():
    d = RobustZScore(warmup=20, adapt_after=30)
    for i in range(100):
        d.learn_one({"util": 1.0 + 0.1 * (i % 3)})
    flagged = []
    for i in range(300):  # a job starts: utilisation jumps to ~95 and stays
        x = {"util": 95.0 + (i % 3)}
        flagged.append(d.score_one(x) >= d.threshold)
        d.learn_one(x)
    assert flagged[0] and not any(flagged[-100:])


def test_zscore_seasonal_baseline_knows_the_same_phase_of_yesterday():
    day = 240.0
    d = RobustZScore(warmup=20, alpha=0.2, season_s=day, season_bins=24, threshold_z=6)
    load = lambda t: 80.0 if (t % day) < day / 2 else 20.0  # noqa: E731
    for t in range(int(3 * day)):
        d.learn_one({"load": load(t) + 0.1 * (t % 3)}, t=float(t))
    # at the switch, the recent level says "surprise" but last season's same phase says "normal"
    t = 4 * day
    assert d.score_one({"load": 80.0}, t=t) < d.threshold
    assert d.score_one({"load": 200.0}, t=t) > d.threshold


def test_zscore_ignores_non_finite_values():
    d = RobustZScore(warmup=5)
    for _ in range(10):
        d.learn_one({"a": 1.0})
    d.learn_one({"a": math.nan})
    assert d.score_one({"a": 1.0}) == 0.0 and math.isfinite(d.score_one({"a": math.inf}))


def test_zscore_checkpoint_holds_only_what_is_used():
    d = RobustZScore()
    d.slots([f"s{i}" for i in range(240)])
    assert len(pickle.dumps(d)) < 240 * 8 * 16 + 20_000


# -- tier 2 -----------------------------------------------------------------------------------------
def test_multivariate_does_not_learn_what_it_flags():
    rng = np.random.default_rng(1)
    d = GpuMultivariate(window_size=50, warmup=150, n_trees=8, height=5, q=0.99, seed=3)
    for _ in range(400):
        u = rng.normal(90, 1)
        d.observe({"util": u, "power": 100 + 6 * u + rng.normal(0, 5)})
    learned = d._n
    _, flagged = d.observe({"util": 2.0, "power": 900.0})
    assert flagged and d._n == learned
    top = d.contributions({"util": 2.0, "power": 900.0})
    assert top[0][0] in ("util", "power") and top[0][3] > 5


# -- tier 3 -----------------------------------------------------------------------------------------
def test_straggler_is_not_judged_while_the_peers_are_idle():
    d = Straggler(warmup=5)
    idle = {f"{g}/{m}": v for g in range(4) for m, v in (("gpu_util_pct", 0.5), ("sm_clock_mhz", 1980.0))}
    for _ in range(10):
        d.learn_one(idle)
    assert max(d.score_many({**idle, "2/gpu_util_pct": 0.0}).values()) == 0 and d.stalled(idle) == []


def test_peer_offsets_absorb_a_gpu_that_always_runs_warmer():
    d = PeerGroup(direction="high", min_scale=0.5, warmup=20, alpha=0.05)
    rng = np.random.default_rng(2)
    for _ in range(300):
        d.learn_one({str(g): 60 + (4.0 if g == 5 else 0.0) + rng.normal(0, 0.3) for g in range(8)})
    normal = {str(g): 60 + (4.0 if g == 5 else 0.0) for g in range(8)}
    assert d.score_many(normal)["5"] < d.threshold
    assert d.score_many({**normal, "5": 72.0})["5"] > d.threshold


def test_two_peers_are_never_judged():
    with pytest.raises(ValueError, match="at least 3"):
        PeerGroup(min_members=2)
    d = PeerGroup(warmup=0)
    assert d.score_many({"a": 1.0, "b": 100.0}) == {"a": 0.0, "b": 0.0}


def test_job_peers_flags_the_slow_node_of_a_job():
    jp = JobPeers(job="j")
    conds = []
    for t in range(150):
        for n in range(4):
            v = 25600.0 * (0.6 if n == 1 and t >= 100 else 1.0) * (1 + 0.01 * ((t + n) % 3))
            conds += jp.observe(JobSummary("j", f"n{n}", T0 + t, {"job_tokens_per_s": v})).conditions
    assert {c.labels["node"] for c in conds} == {"n1"}
    assert all(c.channel == "job_peers" and c.node == "n1" for c in conds)
    assert min(c.ts for c in conds) >= T0 + 100


# -- tier 4 -----------------------------------------------------------------------------------------
def _job(d, n, loss=lambda s: 3.0 * 0.999 ** s, tok=25600.0, start=0):
    for s in range(start, start + n):
        d.learn_one({"job_step": s, "job_loss": loss(s), "job_grad_norm": 1.0 + 0.01 * (s % 5),
                     "job_tokens_per_s": tok * (1 + 0.01 * (s % 3))})


def test_job_health_catches_nan_loss_even_before_warmup():
    d = JobHealth()
    assert d.score_many({"job_step": 1, "job_loss": 1e30})["loss_nonfinite"] > 1
    assert d.score_many({"job_step": 1, "job_loss": 2.0, "job_loss_nonfinite": 1.0})["loss_nonfinite"] > 1


def test_job_health_reads_the_collectors_nonfinite_counter_as_an_event():
    d = JobHealth(warmup=5)
    x = {"job_step": 1, "job_loss": 2.0, "job_loss_nonfinite_total": 0.0}
    d.learn_one(x)
    assert d.score_many({**x, "job_step": 2, "job_loss_nonfinite_total": 1.0})["loss_nonfinite"] > 1
    d.learn_one({**x, "job_step": 2, "job_loss_nonfinite_total": 1.0})
    assert d.score_many({**x, "job_step": 3, "job_loss_nonfinite_total": 1.0})["loss_nonfinite"] == 0


def test_job_health_throughput_drop_and_plateau():
    d = JobHealth(plateau_window=200, warmup=20)
    _job(d, 300)
    s = d.score_many({"job_step": 300, "job_loss": 3.0 * 0.999 ** 300, "job_tokens_per_s": 12000.0})
    assert s["throughput_drop"] > 1 and s["loss_plateau"] < 1
    flat = JobHealth(plateau_window=200, warmup=20)
    _job(flat, 600, loss=lambda s: 0.3 + 0.001 * (s % 2))
    assert flat.score_many({"job_step": 600, "job_loss": 0.3})["loss_plateau"] > 1


def test_a_restarted_job_is_not_a_loss_spike():
    d = JobHealth(warmup=20)
    _job(d, 400)
    restart = {"job_step": 0, "job_loss": 3.0, "job_grad_norm": 1.0, "job_tokens_per_s": 25600.0}
    assert max(d.score_many(restart).values()) < 1
    d.learn_one(restart)
    assert not d.warm


# -- tier 5 -----------------------------------------------------------------------------------------
def test_a_job_filling_its_memory_at_start_is_not_exhaustion():
    d = Exhaustion(warmup=10)
    used, scores = 2.0, []
    for t in range(60):
        x = {"used": used, "free": 80.0 - used}
        d.learn_one(x, t=T0 + t)
        scores.append(d.score_one(x, t=T0 + t))
        if t >= 20:
            used += 0.3 * (57.6 - used)
    run = max((len(r) for r in "".join("1" if s >= 1 else "0" for s in scores).split("0")), default=0)
    assert run <= 4  # at most a blip, shorter than the alert's for_s


def test_time_to_exhaustion_follows_the_sampling_interval():
    d = Exhaustion(warmup=5)
    for i in range(30):
        d.learn_one({"used": 100.0 + i, "limit": 1000.0}, t=T0 + 10.0 * i)
    tte = d.time_to_exhaustion()
    assert 8000 < tte < 8800 and abs(d.exhaustion_at() - (T0 + 290 + tte)) < 1e-6


# -- tier 7 -----------------------------------------------------------------------------------------
def test_absence_forgets_decommissioned_members():
    d = Absence(forget_after_s=100.0)
    for t in range(10):
        d.learn_one({"a": 1.0, "b": 1.0}, t=T0 + t)
    d.learn_one({"a": 1.0}, t=T0 + 500)
    assert d.members() == ["a"]


def test_node_absence_judges_in_event_time_from_heartbeats():
    na = NodeAbsence()
    for t in range(0, 300, 10):
        na.heartbeat("n1", T0 + t, interval_s=10.0)
        if t < 100:
            na.heartbeat("n2", T0 + t, interval_s=10.0)
    (cond,) = na.check().conditions
    assert cond.labels == {"node": "n2"} and cond.channel == "absence" and cond.severity == "critical"
    assert na.check(now=T0 + 100).conditions == []
    assert pickle.loads(pickle.dumps(na)).check().conditions[0].labels == {"node": "n2"}


# -- configuration ---------------------------------------------------------------------------------
def test_config_loads_from_yaml_and_says_what_is_wrong(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text("families:\n  a: {metrics: [x], params: {alpah: 0.1}}\n")
    with pytest.raises(ValueError, match="does not take alpah"):
        DetectionConfig.from_yaml(path)
    path.write_text("families:\n  a: {metrics: [x]}\n  b: {metrics: [x]}\n")
    with pytest.raises(ValueError, match="in both families"):
        DetectionConfig.from_yaml(path)
    path.write_text("families:\n  a: {metrics: [x], detector: nope}\n")
    with pytest.raises(ValueError, match="no detector named 'nope'"):
        DetectionConfig.from_yaml(path)
    path.write_text("families:\n  temps: {metrics: [gpu_temp_c], params: {threshold_z: 5}}\n")
    cfg = DetectionConfig.from_yaml(path)
    assert cfg.families["temps"].build().threshold == 5 and cfg.straggler is None


@pytest.mark.parametrize("text, message", [
    ("a: [\n", "is not valid YAML"),
    ("hello\n", "must be a mapping"),
    ("", "must be a mapping"),  # ran with no detector and said "0 score rows"
    ("families: &f {x: *f}\n", "nested too deeply|families"),
])
def test_detection_configs_that_are_not_a_mapping_say_so(tmp_path, text, message):
    path = tmp_path / "detection.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        DetectionConfig.from_yaml(path)
