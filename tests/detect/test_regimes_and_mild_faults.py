"""Detection on the non-stationary simulator: the issue's milder faults are caught in time, and the workload's
own regime changes (checkpoints, evaluations, data-loader stalls, idle gaps, inference load) raise nothing."""

from __future__ import annotations

import dataclasses

import pytest

from agents.simulator import Fault, SimulatedCluster
from agents.simulator_config import PROFILES
from pipelines.detect.replay import Backtest, batch_from_dict

ONSET = 900
#: holdout's noise (util sigma 4, clock sigma 15 MHz, chip spread 3 %) on steadily training nodes
STEADY = dataclasses.replace(PROFILES["holdout"], inference_share=0.0, checkpoint_every_s=0, eval_every_s=0,
                             loader_stalls_per_h=0.0, models=("a100",))

MILD = [  # the issue's milder sizes, and how soon each must alert
    (Fault("straggler", "node-0", 3, ONSET, 300, 0.2), "GpuStraggler", 10),
    (Fault("ecc_storm", "node-0", 5, ONSET, 300, 4.0), "GpuEccErrorBurst", 10),
    (Fault("nvlink_degradation", "node-1", 2, ONSET, 300, 3.0), "GpuNvlinkErrors", 10),
    (Fault("thermal_runaway", "node-1", 6, ONSET, 300, 0.3), "GpuHotterThanPeers", 60),
    (Fault("memory_leak", "node-1", 1, ONSET, 300, 0.05), "GpuMemoryExhaustionForecast", 60),
    (Fault("loss_divergence", "node-0", 0, ONSET, 300, 1.01), "JobTrainingDiverging", 60),
]


def _alerts(sim: SimulatedCluster, ticks: int) -> list[tuple[int, object]]:
    bt = Backtest()
    out = []
    for tick in range(ticks):
        for b in sim.tick()[0]:
            out += [(tick, e) for e in bt.observe(batch_from_dict(b))[1] if e.status == "firing"]
    return out


@pytest.fixture(scope="module")
def mild_run():
    sim = SimulatedCluster(nodes=2, gpus=8, seed=11, start_ts=1_750_000_000.0, faults=[f for f, *_ in MILD],
                           job_churn_ticks=10**7, profile=STEADY)
    return _alerts(sim, ONSET + 120)


@pytest.mark.parametrize("fault,alertname,within_s", MILD, ids=[f.kind for f, *_ in MILD])
def test_the_milder_faults_of_the_issue_are_caught_in_time(mild_run, fault, alertname, within_s):
    hits = [t for t, e in mild_run if e.alertname == alertname and e.labels["node"] == fault.node
            and e.labels.get("gpu", str(fault.gpu)) == str(fault.gpu)]
    assert hits and ONSET <= hits[0] <= ONSET + within_s, (alertname, hits[:3])


def test_nothing_fires_before_the_faults(mild_run):
    assert [(t, e.alertname) for t, e in mild_run if t < ONSET] == []


def test_regime_changes_of_the_workload_raise_nothing():
    busy = dataclasses.replace(PROFILES["holdout"], checkpoint_every_s=400, eval_every_s=700, loader_stalls_per_h=40.0,
                               inference_share=0.5)
    sim = SimulatedCluster(nodes=3, gpus=8, seed=21, start_ts=1_750_000_000.0, job_churn_ticks=1200,
                           day_ticks=3600, profile=busy)
    alerts = _alerts(sim, 2000)
    assert [(t, e.alertname, dict(e.labels)) for t, e in alerts if e.severity != "info"] == []


def test_a_fatal_xid_with_a_rising_precursor_is_warned_of_before_it_happens():
    fault = Fault("xid79", "node-0", 4, 1500, None, precursor_s=300, precursor="ecc_rate")
    sim = SimulatedCluster(nodes=1, gpus=8, seed=5, start_ts=1_750_000_000.0, faults=[fault], job_churn_ticks=10**7,
                           profile=STEADY)
    warned = [t for t, e in _alerts(sim, 1500) if e.alertname == "GpuErrorTrendRising" and e.labels["gpu"] == "4"]
    assert warned and 1200 <= warned[0] < 1500
