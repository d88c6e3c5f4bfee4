"""One incident per fault: conditions sharing a cause page once; later ones update the page."""

from __future__ import annotations

import pickle

from pipelines.decide import Condition, IncidentBook
from pipelines.decide.faults import FaultIncidents
from schemas.alerts import Evidence


def book() -> IncidentBook:
    return IncidentBook(faults=FaultIncidents())


def cond(name: str, ts: float, gpu: str | None = "1", node: str = "n1", channel: str = "metrics", **kw) -> Condition:
    labels = {"node": node, **({"gpu": gpu} if gpu is not None else {})}
    return Condition(name, labels, ts=ts, node=node, channel=channel, keep_firing_for_s=kw.pop("keep", 0.0), **kw)


def run(b: IncidentBook, ticks: dict[float, list[Condition]], node: str = "n1") -> list:
    return [e for ts, conds in sorted(ticks.items()) for e in b.observe(node, ts, conds)]


def test_an_ecc_storm_is_one_page_then_updates_then_one_resolution():
    b = book()
    ticks = {float(t): [cond("GpuEccDoubleBitErrors", float(t))]
             + ([cond("GpuEccErrorBurst", float(t))] if t >= 2 else [])
             + ([cond("GpuEccSingleBitStorm", float(t))] if t >= 12 else []) for t in range(30)}
    ticks[30.0] = []
    events = run(b, ticks)
    assert [(e.alertname, e.status) for e in events] == [("GpuEccDoubleBitErrors", "firing")] * 3 + [
        ("GpuEccDoubleBitErrors", "resolved")]
    assert len({(e.fingerprint, e.starts_at) for e in events}) == 1
    assert events[-2].annotations["conditions"] == "GpuEccDoubleBitErrors, GpuEccErrorBurst, GpuEccSingleBitStorm"
    assert [e.event_ts for e in events] == sorted(e.event_ts for e in events)  # newer each time (notifier keeps latest)


def test_an_xid_then_the_gpu_going_silent_is_one_incident():
    b = book()
    [page] = b.observe("n1", 10.0, [cond("GpuXidError", 10.0, channel="events", keep=1800, severity="critical")],
                       channel="events", clears=False)
    [update] = b.observe("n1", 13.0, [cond("GpuStoppedReporting", 13.0)])
    assert page.status == update.status == "firing" and page.fingerprint == update.fingerprint
    assert update.annotations["conditions"] == "GpuXidError, GpuStoppedReporting"


def test_every_gpu_of_a_node_going_silent_is_one_page_with_the_node_silence():
    b = book()
    events = b.observe("n1", 5.0, [cond("GpuStoppedReporting", 5.0, gpu=str(g)) for g in range(7)])
    events += b.observe("n1", 40.0, [cond("GpuStoppedReporting", 40.0, gpu=str(g)) for g in range(7)]
                        + [cond("NodeStoppedReporting", 40.0, gpu=None)])
    assert len({e.fingerprint for e in events}) == 1 and events[0].status == "firing"
    assert events[0].annotations["gpus"] == "0, 1, 2, 3, 4, 5, 6"


def test_a_job_slowed_by_its_gpu_failing_joins_the_gpu_fault_but_not_the_other_way_round():
    b = book()
    [page] = b.observe("n1", 1.0, [cond("GpuXidError", 1.0, gpu="2")])
    [update] = b.observe("n1", 5.0, [cond("GpuXidError", 5.0, gpu="2"), cond("JobThroughputDrop", 5.0, gpu=None)])
    assert update.fingerprint == page.fingerprint
    other = book()
    [job] = other.observe("n1", 1.0, [cond("JobTrainingDiverging", 1.0, gpu=None)])
    [xid] = other.observe("n1", 2.0, [cond("JobTrainingDiverging", 2.0, gpu=None), cond("GpuXidError", 2.0, gpu="2")])
    assert xid.fingerprint != job.fingerprint


def test_unrelated_faults_page_separately():
    b = book()
    events = b.observe("n1", 1.0, [cond("JobTrainingDiverging", 1.0, gpu=None)])
    events += b.observe("n1", 2.0, [cond("JobTrainingDiverging", 2.0, gpu=None), cond("GpuEccErrorBurst", 2.0, gpu="1"),
                                    cond("GpuHotterThanPeers", 2.0, gpu="2")])
    events += b.observe("n2", 2.0, [cond("GpuEccErrorBurst", 2.0, gpu="1", node="n2")])
    assert sorted(e.alertname for e in events) == ["GpuEccErrorBurst", "GpuEccErrorBurst", "GpuHotterThanPeers",
                                                   "JobTrainingDiverging"]


def test_a_condition_long_after_the_fault_began_is_a_new_page():
    b = book()
    ticks = {float(t): [cond("GpuHotterThanPeers", float(t))] + ([cond("GpuEccErrorBurst", float(t))] if t > 400 else [])
             for t in range(402)}
    pages = {(e.fingerprint, e.starts_at) for e in run(b, ticks) if e.status == "firing"}
    assert len(pages) == 2


def test_the_page_says_it_in_plain_words_with_units():
    b = book()
    ev = [Evidence(metric="gpu_temp_c", value=84.1, baseline=69.9, score=37.0,
                   detail="peer baseline: median of 8 GPUs on the node plus this GPU's usual offset")]
    [page] = b.observe("n1", 1.0, [cond("GpuHotterThanPeers", 1.0, gpu="3", evidence=ev,
                                        annotations={"summary": "GPU 3 runs hot"})])
    assert "GPU 3 is 14.2 °C hotter than its 7 peers (84.1 °C vs 69.9 °C)" in page.annotations["evidence"]
    assert page.annotations["summary"] == "n1: GPU 3 is 14.2 °C hotter than its 7 peers (84.1 °C vs 69.9 °C)"
    assert page.annotations["detector_summary"] == "GPU 3 runs hot"


def test_log_evidence_found_later_updates_the_open_incident_only():
    b = book()
    [page] = b.observe("n1", 1.0, [cond("GpuHotterThanPeers", 1.0)])
    logs = [Evidence(metric="log_template_burst", value=12.0, detail="template 7: NCCL timeout")]
    update = b.faults.add_evidence(page.fingerprint, logs, {"logs_query": "SELECT 1"})
    assert update.fingerprint == page.fingerprint and update.event_ts > page.event_ts
    assert update.evidence[-1].metric == "log_template_burst" and update.annotations["logs_query"] == "SELECT 1"
    b.observe("n1", 2.0, [])
    assert b.faults.add_evidence(page.fingerprint, logs, {}) is None  # resolved: nothing to update


def test_the_book_with_its_faults_survives_pickling_and_an_old_book_still_resolves():
    b = book()
    b.observe("n1", 1.0, [cond("GpuEccErrorBurst", 1.0)])
    restored = pickle.loads(pickle.dumps(b))
    assert restored.observe("n1", 2.0, [cond("GpuEccSingleBitStorm", 2.0)])[0].status == "firing"  # an update
    old = IncidentBook()  # checkpointed before faults were joined
    [fired] = old.observe("n1", 1.0, [cond("GpuHot", 1.0)])
    old.faults = FaultIncidents()
    [resolved] = old.observe("n1", 2.0, [])
    assert (resolved.status, resolved.fingerprint) == ("resolved", fired.fingerprint)
