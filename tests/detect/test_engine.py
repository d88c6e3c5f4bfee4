"""NodeDetectors end to end on the simulator: each fault type gives its alert, once; state survives pickling."""

from __future__ import annotations

import pickle
import time

import pytest

from agents.simulator import Fault, SimulatedCluster
from pipelines.decide import IncidentBook
from pipelines.detect import DetectionConfig, NodeDetectors, new_node_detectors
from pipelines.detect.replay import Backtest, batch_from_dict
from schemas.alerts import AlertEvent

ONSET, TICKS = 420, 700
FAULTS = [
    Fault("thermal_runaway", "node-0", 1, ONSET, 60), Fault("ecc_storm", "node-0", 2, ONSET, 60),
    Fault("straggler", "node-0", 3, ONSET, 60), Fault("memory_leak", "node-0", 4, ONSET, 120),
    Fault("nvlink_degradation", "node-0", 5, ONSET, 60), Fault("stalled_gpu", "node-0", 6, ONSET, 60),
    Fault("xid79", "node-0", 7, ONSET), Fault("loss_divergence", "node-1", 0, ONSET, 60),
]
EXPECTED = {  # fault -> the alert that names it
    "thermal_runaway": "GpuHotterThanPeers", "ecc_storm": "GpuEccErrorBurst", "straggler": "GpuStraggler",
    "memory_leak": "GpuMemoryExhaustionForecast", "nvlink_degradation": "GpuNvlinkErrors",
    "stalled_gpu": "GpuStalled", "xid79": "GpuStoppedReporting", "loss_divergence": "JobTrainingDiverging",
}


def _cluster(faults, seed=3, nodes=2):
    return SimulatedCluster(nodes=nodes, gpus=8, seed=seed, start_ts=time.time() - 2 * TICKS, faults=faults,
                            job_churn_ticks=10**6)


@pytest.fixture(scope="module")
def faulted_run():
    sim = _cluster(FAULTS)
    bt = Backtest()
    alerts: list[tuple[int, AlertEvent]] = []
    conditions_before_warm = []
    for tick in range(TICKS):
        for b in sim.tick()[0]:
            obs, events = bt.observe(batch_from_dict(b))
            if tick < 55:
                conditions_before_warm.extend(obs.conditions)
            alerts.extend((tick, e) for e in events)
    return bt, alerts, conditions_before_warm, sim.start_ts


@pytest.mark.parametrize("fault", FAULTS, ids=[f.kind for f in FAULTS])
def test_each_fault_type_fires_its_alert_once_and_early(faulted_run, fault):
    _, alerts, _, _ = faulted_run
    name = EXPECTED[fault.kind]
    firing = [(tick, e) for tick, e in alerts if e.status == "firing" and e.alertname == name
              and e.labels["node"] == fault.node and e.labels.get("gpu", str(fault.gpu)) == str(fault.gpu)]
    assert len(firing) == 1, [e.alertname for _, e in alerts]
    tick, event = firing[0]
    assert ONSET <= tick <= ONSET + 15, f"{name} fired {tick - ONSET} ticks after onset"
    assert event.evidence and event.evidence_query.startswith("SELECT")
    assert "gpuwatch.metrics_raw" in event.evidence_query and f"node = '{fault.node}'" in event.evidence_query


def test_no_alert_that_no_fault_explains(faulted_run):
    _, alerts, _, _ = faulted_run
    faulted = {(f.node, str(f.gpu)) for f in FAULTS}
    stray = [e for _, e in alerts if e.status == "firing"
             and (e.labels["node"], e.labels.get("gpu", "0")) not in faulted]
    assert stray == []


def test_nothing_is_reported_while_warming_up(faulted_run):
    _, _, before_warm, _ = faulted_run
    assert before_warm == []


def test_score_rows_have_the_anomaly_scores_columns(faulted_run):
    bt, *_ = faulted_run
    sim = _cluster([], seed=9, nodes=1)
    obs = None
    for _ in range(3):
        obs, _ = bt.observe(batch_from_dict(sim.tick()[0][0]))
    for ts, node, gpu, detector, subject, score, threshold, anomalous in obs.scores:
        assert isinstance(ts, float) and node == "node-0" and isinstance(gpu, int)
        assert isinstance(score, float) and anomalous in (0, 1) and detector and subject


def test_top_score_rows_keep_what_a_detector_saw_and_drop_its_zeros():
    """``top`` writes each GPU's highest score per detector only when it is above 0, and every anomalous
    row; ``all`` writes the zeros too. Zeros were three rows in four at fleet scale (issue 10)."""
    sim = _cluster([Fault("ecc_storm", "node-0", 2, 330, 60)], nodes=1)
    batches = [batch_from_dict(sim.tick()[0][0]) for _ in range(345)]
    top = NodeDetectors(DetectionConfig.default().model_copy(update={"score_rows": "top"}))
    every = NodeDetectors(DetectionConfig.default().model_copy(update={"score_rows": "all"}))
    top_rows, all_rows = [], []
    for b in batches:
        top_rows += top.observe(b).scores
        all_rows += every.observe(b).scores
    assert top_rows and all(r[5] > 0 or r[7] for r in top_rows)
    assert any(r[5] == 0 for r in all_rows)
    assert {r for r in all_rows if r[7]} <= set(top_rows)  # nothing anomalous is left out
    burst = [r for r in top_rows if r[3] == "counter_burst"]
    assert burst and {r[2] for r in burst} == {2}  # the storm's GPU alone: the quiet ones wrote nothing

    def highest(rows: list) -> dict:  # (ts, gpu, detector) -> its highest score
        best: dict = {}
        for r in rows:
            key = (r[0], r[2], r[3])
            best[key] = max(best.get(key, r[5]), r[5])
        return best

    top_best = highest(top_rows)
    for key, best in highest(all_rows).items():  # per GPU and detector, the highest positive score
        if best > 0:
            assert top_best.get(key) == best


def test_exhaustion_alert_says_when(faulted_run):
    _, alerts, _, _ = faulted_run
    leak = next(e for _, e in alerts if e.alertname == "GpuMemoryExhaustionForecast")
    assert "forecast full in" in leak.annotations["summary"]
    assert leak.annotations["exhaustion_at"].endswith("Z") and float(leak.annotations["time_to_exhaustion_s"]) > 0


def test_restored_detectors_resume_trained_without_a_gap_or_a_storm():
    """A pickled-and-restored NodeDetectors (a restarted worker) decides exactly as the original."""
    sim = _cluster([Fault("straggler", "node-0", 3, 500, 60)], nodes=1)
    batches = [batch_from_dict(sim.tick()[0][0]) for _ in range(600)]
    nd = new_node_detectors()
    for b in batches[:400]:
        nd.observe(b)
    restored = pickle.loads(pickle.dumps(nd))
    book_a, book_b = IncidentBook(), IncidentBook()
    events_a, events_b = [], []
    for b in batches[400:]:
        oa, ob = nd.observe(b), restored.observe(b)
        assert oa.scores == ob.scores
        assert [c.fingerprint for c in oa.conditions] == [c.fingerprint for c in ob.conditions]
        events_a += book_a.observe(b.node, b.ts, oa.conditions)
        events_b += book_b.observe(b.node, b.ts, ob.conditions)
    assert [(e.alertname, e.status) for e in events_a] == [(e.alertname, e.status) for e in events_b]
    assert [e.alertname for e in events_a if e.status == "firing"] == ["GpuStraggler"]


def test_a_replayed_batch_is_not_learned_twice():
    sim = _cluster([], nodes=1)
    batches = [batch_from_dict(sim.tick()[0][0]) for _ in range(5)]
    nd = new_node_detectors()
    for b in batches:
        assert nd.observe(b).fresh
    before = pickle.dumps(nd)
    assert nd.observe(batches[2]).fresh is False
    assert pickle.dumps(nd) == before


def test_validated_metric_batches_work_and_checkpoints_stay_compact():
    sim = _cluster([], nodes=1)
    nd = NodeDetectors(DetectionConfig.default())
    for _ in range(320):
        obs = nd.observe(batch_from_dict(sim.tick()[0][0], validate=True))
    assert obs.fresh and obs.scores
    size = len(pickle.dumps(nd))
    assert size < 400_000, f"one node's detection state pickles to {size} bytes"


def test_job_summaries_are_emitted_for_job_peers(faulted_run):
    sim = _cluster([], nodes=1)
    nd = new_node_detectors()
    obs = nd.observe(batch_from_dict(sim.tick()[0][0]))
    (summary,) = obs.job_summaries
    assert summary.job == "job-0" and summary.node == "node-0"
    assert {"job_tokens_per_s", "gpu_util_pct", "sm_clock_mhz"} <= set(summary.values)
