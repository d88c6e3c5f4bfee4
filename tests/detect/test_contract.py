"""The one contract every registered detector passes (as River's check suite does for its estimators).

Each detector gets a scenario: a stream of normal observations and a stream in
which a fault of the kind it exists to catch is injected. Against it, every
detector must pickle and round-trip (identical scores afterwards), clone, survive
a feature that appears or disappears, and rank the fault above normal data far
better than chance.
"""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from pipelines.detect import make_detector, registered

T0 = 1_700_000_000.0


def _robust_zscore(rng):
    def x(fault):
        return {"a": rng.normal(10, 1) + (8 if fault else 0), "b": rng.normal(100, 5)}
    return {"warmup": 30}, x


def _gpu_multivariate(rng):
    def x(fault):
        util = rng.normal(90, 1)
        return {"util": 5.0 if fault else util, "power": 100 + 6 * util + rng.normal(0, 5),
                "temp": 60 + rng.normal(0, 0.5)}
    return {"window_size": 50, "warmup": 150, "n_trees": 8, "height": 5, "seed": 7}, x


def _peer_group(rng):
    def x(fault):
        v = {str(i): 60 + 0.3 * i + rng.normal(0, 0.4) for i in range(6)}
        if fault:
            v["2"] += 8
        return v
    return {"warmup": 20, "min_scale": 0.5}, x


def _straggler(rng):
    def x(fault):
        v = {}
        for g in range(6):
            slow = fault and g == 2
            v[f"{g}/gpu_util_pct"] = rng.normal(95, 1) * (0.55 if slow else 1)
            v[f"{g}/sm_clock_mhz"] = rng.normal(1980, 10) * (0.6 if slow else 1)
        return v
    return {"warmup": 20}, x


def _job_health(rng):
    state = {"loss": 3.0, "step": 0}

    def x(fault):
        state["step"] += 1
        state["loss"] = state["loss"] * 1.15 + 0.05 if fault else max(0.3, state["loss"] * 0.999 + rng.normal(0, 0.01))
        return {"job_step": state["step"], "job_loss": state["loss"],
                "job_grad_norm": abs(rng.normal(1, 0.1)) * (10 if fault else 1),
                "job_tokens_per_s": 25600 * (1 + rng.normal(0, 0.02))}
    return {"warmup": 20}, x


def _exhaustion(rng):
    state = {"used": 50.0}

    def x(fault):
        state["used"] = state["used"] + 0.25 if fault else 50.0 + rng.normal(0, 0.01)
        return {"used": state["used"], "limit": 80.0}
    return {"horizon_s": 600, "warmup": 10}, x


def _absence(rng):
    def x(fault):
        return {"a": 1.0, "c": 1.0} if fault else {"a": 1.0, "b": 1.0, "c": 1.0}
    return {"min_silence_s": 2.0}, x


def _counter_burst(rng):
    def x(fault):
        return {"0/ecc": float(rng.poisson(6.0 if fault else 0.002)), "1/ecc": float(rng.poisson(0.002))}
    return {"window_s": 10, "warmup_s": 60}, x


def _error_trend(rng):
    state = {"rate": 0.0}

    def x(fault):
        state["rate"] = state["rate"] + 0.02 if fault else 0.0
        return {"ecc_sbe_rate": float(rng.poisson(0.001 + state["rate"])), "pcie_link_width": 8.0 if fault else 16.0,
                "gpu_util_pct": 90.0}
    return {"window_s": 120, "warmup_s": 60}, x


SCENARIOS = {
    "counter_burst": _counter_burst, "error_trend": _error_trend,
    "robust_zscore": _robust_zscore, "gpu_multivariate": _gpu_multivariate, "peer_group": _peer_group,
    "straggler": _straggler, "job_health": _job_health, "exhaustion": _exhaustion, "absence": _absence,
}
N_NORMAL, N_FAULT = 300, 40


def _streams(name: str, seed: int = 0):
    params, gen = SCENARIOS[name](np.random.default_rng(seed))
    normal = [(T0 + i, gen(False)) for i in range(N_NORMAL)]
    fault = [(T0 + N_NORMAL + i, gen(True)) for i in range(N_FAULT)]
    return params, normal, fault


def _feed(det, stream):
    scores = []
    for t, x in stream:
        scores.append(det.score_one(x, t))
        det.learn_one(x, t)
    return scores


def _auc(neg: list[float], pos: list[float]) -> float:
    neg, pos = np.asarray(neg), np.asarray(pos)
    greater = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    return float(greater + 0.5 * ties)


def test_every_registered_detector_has_a_contract_scenario():
    assert set(registered()) == set(SCENARIOS), "add a scenario here for every detector you register"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_pickle_round_trip_gives_identical_scores(name):
    params, normal, fault = _streams(name)
    det = make_detector(name, **params)
    _feed(det, normal[:250])
    restored = pickle.loads(pickle.dumps(det))
    rest = normal[250:] + fault
    assert _feed(restored, rest) == _feed(det, rest)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_clone_is_fresh_with_the_same_configuration(name):
    params, normal, _ = _streams(name)
    det = make_detector(name, **params)
    _feed(det, normal)
    fresh = det.clone()
    assert type(fresh) is type(det) and repr(fresh) == repr(det)
    assert fresh.warm is False and det.warm is True
    for k, v in params.items():
        assert getattr(fresh, k) == v  # configuration is stored as given


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_a_feature_appearing_or_disappearing_is_survived(name):
    params, normal, fault = _streams(name)
    det = make_detector(name, **params)
    _feed(det, normal[:200])
    t, x = normal[200]
    dropped = dict(list(x.items())[1:])
    added = {**x, "brand_new_metric": 42.0}
    for obs in (dropped, added, {}, dropped, x):
        s = det.score_one(obs, t)
        assert isinstance(s, float) and math.isfinite(s)
        assert all(math.isfinite(v) for v in det.score_many(obs, t).values())
        det.learn_one(obs, t)
        t += 1
    # and it still knows its job afterwards
    later = [(t + i, xx) for i, (_, xx) in enumerate(normal[205:])]
    normal_scores = _feed(det, later)
    fault_scores = _feed(det, [(later[-1][0] + 1 + i, xx) for i, (_, xx) in enumerate(fault)])
    assert _auc(normal_scores[-50:], fault_scores) > 0.75


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_an_injected_fault_is_found_far_better_than_chance(name):
    params, normal, fault = _streams(name)
    det = make_detector(name, **params)
    normal_scores = _feed(det, normal)
    fault_scores = _feed(det, fault)
    assert det.warm
    assert _auc(normal_scores[-100:], fault_scores) > 0.75
    flagged = sum(det.is_anomalous(s) for s in fault_scores) / len(fault_scores)
    false = sum(det.is_anomalous(s) for s in normal_scores[-100:]) / 100
    assert flagged > false


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_unknown_parameter_is_refused_with_a_sentence(name):
    with pytest.raises(ValueError, match="does not take"):
        make_detector(name, no_such_parameter=1)
