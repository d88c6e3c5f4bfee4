"""Log anomalies through the processor and the incident book: new templates, bursts, error rates."""

from __future__ import annotations

from pipelines.decide import IncidentBook
from pipelines.logs.anomalies import LogAnomalySettings
from pipelines.logs.processor import LogProcessor
from tests.logs.conftest import batch

QUICK = LogAnomalySettings(warmup_s=600, warmup_lines=500, history_windows=5)
ROUTINE = ["step {i} loss 2.{i} lr 3e-4", "NCCL INFO Channel 0{j}/0 : 0[0] -> 1[1] via P2P/IPC/read",
           "dataloader worker {j} prefetched shard {i}"]


def routine(i: int) -> list[str]:
    return [t.format(i=i, j=i % 8) for t in ROUTINE]


def play(p: LogProcessor, book: IncidentBook, node: str, lines: list[str], ts: float, **kw) -> list:
    """Process one batch and pass its observations to the book, as the pipeline does."""
    out = p.process(batch(node, lines, ts, **kw), 0, 0)
    alerts = []
    for obs in out.observations:
        alerts += book.observe(obs.key, obs.ts, obs.conditions, channel="logs")
    return alerts


def warm_up(p: LogProcessor, book: IncidentBook, node: str, t0: float, minutes: int, job: str | None = None):
    alerts = []
    for m in range(minutes):
        for s in range(0, 60, 10):
            alerts += play(p, book, node, routine(m * 6 + s) * 20, t0 + m * 60 + s, job=job)
    return alerts


def test_no_new_template_alerts_while_the_miner_warms_up(t0):
    p, book = LogProcessor(anomaly_settings=LogAnomalySettings()), IncidentBook()  # defaults: 15 min, 10k lines
    alerts = warm_up(p, book, "n1", t0, 5)
    alerts += play(p, book, "n1", ["FATAL: parameter server lost contact with rank 12"], t0 + 301)
    assert alerts == []
    assert p.stats()["new_templates"] >= 4  # they were new, just not alerted on


def test_a_new_error_template_after_warm_up_fires_once_and_resolves(t0):
    p, book = LogProcessor(anomaly_settings=QUICK), IncidentBook()
    assert warm_up(p, book, "n1", t0, 12) == []
    ts = t0 + 12 * 60
    alerts = play(p, book, "n1", ["FATAL: parameter server lost contact with rank 12"], ts)
    assert [(a.alertname, a.status, a.source) for a in alerts] == [("LogNewTemplate", "firing", "log_new_template")]
    assert alerts[0].labels["node"] == "n1" and "parameter server" in alerts[0].annotations["template"]
    assert "event_id IN (SELECT " in alerts[0].evidence_query
    # the same line again is not new; the alert resolves once its hold time passes
    assert play(p, book, "n1", ["FATAL: parameter server lost contact with rank 3"], ts + 10) == []
    later = play(p, book, "n1", routine(1), ts + QUICK.new_template_hold_s + 20)
    assert [(a.alertname, a.status) for a in later] == [("LogNewTemplate", "resolved")]


def test_a_new_harmless_template_does_not_alert_by_default(t0):
    p, book = LogProcessor(anomaly_settings=QUICK), IncidentBook()
    warm_up(p, book, "n1", t0, 12)
    assert play(p, book, "n1", ["checkpoint shard 3 uploaded to bucket alpha"], t0 + 721) == []
    p2, book2 = LogProcessor(anomaly_settings=LogAnomalySettings(
        warmup_s=600, warmup_lines=500, history_windows=5, new_template_errors_only=False)), IncidentBook()
    warm_up(p2, book2, "n1", t0, 12)
    assert len(play(p2, book2, "n1", ["checkpoint shard 3 uploaded to bucket alpha"], t0 + 721)) == 1


def test_templates_known_elsewhere_in_the_fleet_are_not_new(t0):
    p, book = LogProcessor(anomaly_settings=QUICK), IncidentBook()
    warm_up(p, book, "n1", t0, 12)
    other = LogProcessor()
    known = other.mine_line("FATAL: parameter server lost contact with rank 12")
    assert p.learn_fleet_templates([(known.template_id, known.text)]) == 1
    assert play(p, book, "n1", ["FATAL: parameter server lost contact with rank 7"], t0 + 721) == []


def test_a_burst_of_a_known_template_fires_against_its_own_baseline(t0):
    p, book = LogProcessor(anomaly_settings=QUICK), IncidentBook()
    assert warm_up(p, book, "n1", t0, 12) == []
    ts = t0 + 12 * 60
    # the NCCL INFO line usually comes 120 times a minute; now 3,000 in 10 s
    alerts = play(p, book, "n1", ROUTINE[1].format(j=3), ts, n=3000, spread_s=10)
    bursts = [a for a in alerts if a.alertname == "LogTemplateBurst"]
    assert [a.status for a in bursts] == ["firing"]
    ev = bursts[0].evidence[0]
    assert ev.value >= 3000 and ev.baseline < 200 and "NCCL INFO Channel" in ev.detail
    # a burst on n1 says nothing about n2
    assert [a for a in play(p, book, "n2", ROUTINE[1].format(j=3), ts, n=100) if a.status == "firing"] == []
    # back to normal: resolves after the hold time
    quiet = []
    for k in range(1, 8):
        quiet += play(p, book, "n1", routine(k), ts + 60 * k)
    assert [(a.alertname, a.status) for a in quiet] == [("LogTemplateBurst", "resolved")]


def test_routine_traffic_raises_nothing(t0):
    p, book = LogProcessor(anomaly_settings=QUICK), IncidentBook()
    assert warm_up(p, book, "n1", t0, 30, job="llm") == []


def test_error_rate_per_node_and_per_job(t0):
    p, book = LogProcessor(anomaly_settings=QUICK), IncidentBook()
    for m in range(12):
        for s in range(0, 60, 10):
            lines = routine(m * 6 + s) * 20 + ["connection to storage failed, retrying"]
            play(p, book, "n1", lines, t0 + m * 60 + s, job="llm")
            play(p, book, "n2", routine(m), t0 + m * 60 + s, job="llm")
    ts = t0 + 12 * 60
    errors = [f"rank {r}: connection to storage failed, retrying" for r in range(200)]
    alerts = play(p, book, "n1", errors, ts, job="llm", level="error")
    got = {(a.alertname, tuple(sorted(a.labels.items())), a.status) for a in alerts}
    assert ("LogErrorRateHigh", (("alertname", "LogErrorRateHigh"), ("node", "n1")), "firing") in got
    assert ("LogErrorRateHigh", (("alertname", "LogErrorRateHigh"), ("job", "llm")), "firing") in got
    assert all(a.labels.get("node") != "n2" for a in alerts)


def test_finished_jobs_are_forgotten(t0):
    p = LogProcessor(anomaly_settings=LogAnomalySettings(forget_after_s=3600))
    for k in range(10_000):
        p.process(batch("n1", "step 1", t0 + k * 0.5, job=f"job-{k // 1000}"), 0, k)
    assert len(p.anomalies.jobs) < 10, "jobs not seen for an hour must not stay in memory"


def test_a_template_that_generalises_keeps_its_baseline_and_its_evidence(t0):
    """drain generalises "... to bucket alpha" into "... to bucket <*>" when other buckets appear: a new
    template id for the same event. Its steady traffic is no burst, and the evidence query of an alert
    on it finds the lines stored under its earlier id (the lineage, issue 14)."""
    p, book = LogProcessor(anomaly_settings=QUICK), IncidentBook()
    steady = "checkpoint shard {i} written by rank {j} to bucket {b}"
    alerts = []
    for m in range(20):
        for s in range(0, 60, 10):
            i = m * 6 + s
            bucket = "alpha" if m < 12 else ("beta", "gamma", "delta")[i % 3]
            lines = routine(i) * 20 + [steady.format(i=i, j=k, b=bucket) for k in range(20)]
            alerts += play(p, book, "n1", lines, t0 + m * 60 + s)
    assert p.miner.lineage, "the scenario must make the template generalise"
    assert [a for a in alerts if a.status == "firing"] == []
    ts = t0 + 20 * 60
    alerts = play(p, book, "n1", steady.format(i=1, j=2, b="omega"), ts, n=3000, spread_s=10)
    burst = [a for a in alerts if a.alertname == "LogTemplateBurst"]
    assert len(burst) == 1
    query = burst[0].evidence_query
    assert "logs_resolved" in query and "event_id IN" in query and burst[0].labels["template_id"] in query
