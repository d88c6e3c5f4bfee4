"""The whole path on real parts: simulated agents -> Kafka -> pipeline -> chDB -> alerts -> receiver."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.stack import wait_for

pytestmark = pytest.mark.integration


def test_every_published_sample_is_stored_exactly_once(stack):
    stack.start_pipeline()
    summary = stack.simulate(3, 4, 50)
    n = summary["samples_published"]
    assert n == 3 * 50 * (4 * 22 + 5)  # 22 GPU signals per GPU, 5 job signals per node
    wait_for(lambda: stack.scalar("SELECT count() FROM gpuwatch.metrics_raw") >= n, 90, what=f"{n} rows")
    time.sleep(2)  # anything extra would have arrived by now
    row = stack.query("SELECT count() AS rows, uniqExact(node, gpu, metric, ts) AS series_points "
                      "FROM gpuwatch.metrics_raw")[0]
    assert row == {"rows": n, "series_points": n}
    # the features cover every sample once, in 1-minute windows
    wait_for(lambda: stack.scalar("SELECT sum(count) FROM gpuwatch.features_1m FINAL") == n, 60,
             what="features for every sample")
    # and /metrics says what the worker's CPU went to, stage by stage
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"http://127.0.0.1:{stack.web_port}/metrics", timeout=10).text
    stages = {s.labels["stage"]: s.value for fam in text_string_to_metric_families(text)
              if fam.name == "gpuwatch_stage_cpu_seconds" for s in fam.samples if s.name.endswith("_total")}
    assert set(stages) == {"decode", "windows", "rules", "detectors", "arrow", "insert"}, stages
    assert all(v > 0 for v in stages.values()), stages


def test_injected_fault_gives_one_incident_firing_then_resolved_at_the_receiver(stack, receiver):
    stack.start_pipeline()
    notifier = stack.spawn("notify", "notify", "--webhook", receiver.url)
    notifier.wait_for_line("notify: ready")
    # long enough after the fault for every detector's keep_firing_for to run out
    stack.simulate(4, 8, 320, "thermal_runaway@node-2/3:90+40")

    def alerts():
        return [(b["status"], a) for b in receiver.bodies() for a in b["alerts"]]

    def conditions(a) -> set[str]:
        return {n.strip() for n in a["annotations"].get("conditions", "").split(",") if n.strip()}

    wait_for(lambda: any(s == "resolved" and "GpuTemperatureHigh" in conditions(a) for s, a in alerts()), 120,
             what="the incident to resolve")
    time.sleep(3)  # a duplicate would show up here
    by_fingerprint: dict[str, list] = {}
    for status, a in alerts():
        by_fingerprint.setdefault(a["fingerprint"], []).append((status, a))
    # one fault, one incident: firing (updated as conditions join, same start), then resolved once
    assert len(by_fingerprint) == 1, list(by_fingerprint)
    [(fp, events)] = by_fingerprint.items()
    statuses = [s for s, _ in events]
    assert statuses[0] == "firing" and statuses[-1] == "resolved" and statuses.count("resolved") == 1, statuses
    assert len({a["startsAt"] for _, a in events}) == 1
    labels = events[0][1]["labels"]
    assert (labels["node"], labels["gpu"]) == ("node-2", "3"), labels
    assert events[-1][1]["endsAt"] > events[-1][1]["startsAt"]
    assert {"GpuTemperatureHigh", "GpuHotterThanPeers"} <= conditions(events[-1][1])

    sql = (f"SELECT status, annotations, evidence_query FROM gpuwatch.alerts WHERE fingerprint = '{fp}' "
           "ORDER BY event_ts")
    stored = wait_for(lambda: len(rows := stack.query(sql)) >= 2 and rows, 30, what="alert history rows")
    assert [r["status"] for r in stored][-1] == "resolved" and {r["status"] for r in stored[:-1]} == {"firing"}
    query = stored[-1]["annotations"].get("evidence_query_GpuTemperatureHigh") or stored[0]["evidence_query"]
    evidence = stack.query(query)
    assert max(r["value"] for r in evidence) > 87
