"""The log path on real parts: LogBatch messages -> Kafka -> pipeline -> chDB -> alerts -> receiver.

One story, told in event time so that the log detectors' warm-up (15 minutes
and 10,000 lines before new-template alerts; 10 windows of history before
bursts and error rates) passes with their production defaults:

* 20 minutes of routine training lines from node-0..node-2, three a second
  each, with one NCCL watchdog timeout on node-0 five minutes in (inside the
  warm-up: it must give a node event and an alert, but no "new template");
* then, in the last minute, a never-seen storage error on node-1 (25 lines)
  and a burst of a known dataloader template on node-2 (1,200 lines);
* then a simulated thermal runaway on node-2's GPU 1, whose metric alert must
  come with node-2's log templates as evidence.
"""

from __future__ import annotations

import time
from collections import Counter

import orjson
import pytest
from confluent_kafka import Producer

from pipelines.logs.miner import template_id
from pipelines.logs.processor import LogProcessor
from schemas.codec import encode_dict
from schemas.topics import LOGS
from tests.stack import wait_for

pytestmark = pytest.mark.integration

NODES = ("node-0", "node-1", "node-2")
ROUTINE_S = 20 * 60  # warm-up needs 15 minutes of event time and 10k lines: 3 nodes x 3 lines/s x 1200 s
STEP = "step {i} loss {loss:.4f} lr 3.0e-04 throughput {tput} samples/s"
LOADER = "dataloader worker {w} fetched batch {i} in {ms} ms"
UTIL = "gpu {g} utilization {u} % memory {mib} MiB"
WATCHDOG = ("[Rank {r}] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=4821, OpType=ALLREDUCE, "
            "NumelIn=1048576, NumelOut=1048576, Timeout(ms)=600000) ran for {ms} milliseconds before timing out.")
STORAGE = "ERROR storage: read of shard {s} from /mnt/datasets/shard-{s:05d}.tar failed: Input/output error (errno 5)"

LOG_ALERTS = {("LogNewTemplate", "node-1"), ("LogErrorRateHigh", "node-1"), ("LogTemplateBurst", "node-2"),
              ("CriticalLogPattern", "node-0")}


def routine(node: int, ts: float, i: int) -> list[dict]:
    """One second of a healthy node's log: a step, a dataloader line, a GPU line."""
    return [
        {"ts": ts, "message": STEP.format(i=i, loss=2.5 - i * 1e-4, tput=1800 + (i * 7 + node) % 200),
         "level": "info", "source": "/var/log/train.log"},
        {"ts": ts + 0.2, "message": LOADER.format(w=i % 8, i=i, ms=20 + (i * 13) % 50), "level": "info",
         "source": "/var/log/train.log"},
        {"ts": ts + 0.4, "message": UTIL.format(g=i % 8, u=90 + i % 10, mib=60_000 + (i * 31) % 4000),
         "level": "info", "source": "/var/log/train.log"},
    ]


def phases(t0: float) -> tuple[dict[str, list[dict]], dict[str, list[dict]]]:
    """Per node, time-ordered records of (1) the 20 routine minutes and (2) the anomalous minute after."""
    first: dict[str, list[dict]] = {n: [] for n in NODES}
    second: dict[str, list[dict]] = {n: [] for n in NODES}
    for k, node in enumerate(NODES):
        for s in range(ROUTINE_S + 60):
            (first if s < ROUTINE_S else second)[node].extend(routine(k, t0 + s, s))
    # two ranks time out in the same second: one event (the pattern's cooldown), inside the warm-up
    first["node-0"] += [{"ts": t0 + 300.5, "message": WATCHDOG.format(r=r, ms=600_040 + r), "source": "stderr"}
                        for r in (3, 5)]
    second["node-1"] += [{"ts": t0 + ROUTINE_S + 15 + j * 0.5, "message": STORAGE.format(s=17 + j),
                          "level": "error", "source": "/var/log/train.log"} for j in range(25)]
    second["node-2"] += [{"ts": t0 + ROUTINE_S + 30 + j / 60, "message": LOADER.format(w=j % 8, i=j, ms=3),
                          "level": "info", "source": "/var/log/train.log"} for j in range(1200)]
    for recs in (*first.values(), *second.values()):
        recs.sort(key=lambda r: r["ts"])
    return first, second


def produce(producer: Producer, topic: str, records: dict[str, list[dict]]) -> int:
    """Send each node's records as 10-second LogBatches, interleaving nodes in event time."""
    batches = []
    for node, recs in records.items():
        slots: dict[int, list[dict]] = {}
        for r in recs:
            slots.setdefault(int(r["ts"] // 10), []).append(r)
        batches += [(slot, node, rs) for slot, rs in slots.items()]
    for _, node, rs in sorted(batches, key=lambda b: b[:2]):
        producer.produce(topic, key=node.encode(), value=encode_dict({"v": 1, "kind": "logs", "node": node,
                                                                      "records": rs}))
        producer.poll(0)
    assert producer.flush(30) == 0
    return sum(len(rs) for rs in records.values())


def test_log_anomalies_and_critical_lines_become_alerts_and_explain_metric_alerts(stack, receiver):
    stack.start_pipeline()
    notifier = stack.spawn("notify", "notify", "--webhook", receiver.url)
    notifier.wait_for_line("notify: ready")
    producer = Producer({"bootstrap.servers": stack.bootstrap, "enable.idempotence": True, "linger.ms": 20})
    topic = stack.topic(LOGS.name)
    t0 = float(int(time.time()) // 60 * 60 - (ROUTINE_S + 120))  # minute-aligned; the last line is >= 60 s old
    first, second = phases(t0)

    def stored() -> int:
        return stack.scalar("SELECT count() FROM gpuwatch.logs")

    # 1. the routine 20 minutes, all stored before the anomalies are sent (so the miner is warm whatever
    #    order the pipeline reads the partitions in)
    sent = produce(producer, topic, first)
    wait_for(lambda: stored() >= sent, 60, what=f"{sent} routine log rows")
    sent += produce(producer, topic, second)
    wait_for(lambda: stored() >= sent, 60, what=f"{sent} log rows")

    def log_alerts() -> list[dict]:
        return stack.query("SELECT fingerprint, status, alertname, node, labels, evidence_query FROM gpuwatch.alerts "
                           "WHERE source LIKE 'log%' ORDER BY event_ts")

    wait_for(lambda: {(a["alertname"], a["node"]) for a in log_alerts()} >= LOG_ALERTS, 30, what="the log alerts")

    # 2. every line stored once, with the template id any fresh miner gives it (same template, same id)
    time.sleep(2)  # a duplicate row or alert would show up here
    assert stored() == sent
    miner = LogProcessor()  # mine_line: the header split off, as the pipeline does
    expected = Counter(miner.mine_line(r["message"]).template_id
                       for part in (first, second) for recs in part.values() for r in recs)
    assert len(expected) == 5  # step, dataloader, gpu, watchdog, storage error
    got = {int(r["template_id"]): r["n"] for r in stack.query(
        "SELECT template_id, count() AS n FROM gpuwatch.logs GROUP BY template_id")}
    assert got == dict(expected)
    assert 0 not in got
    templates = stack.query("SELECT template_id, text, count FROM gpuwatch.log_templates_current")
    assert {int(t["template_id"]): t["count"] for t in templates} == dict(expected)
    assert all(template_id(t["text"]) == int(t["template_id"]) for t in templates)
    per_node = stack.query("SELECT node, count() AS n FROM gpuwatch.logs GROUP BY node ORDER BY node")
    assert per_node == [{"node": n, "n": len(first[n]) + len(second[n])} for n in NODES]
    storage_id = miner.mine_line(STORAGE.format(s=1)).template_id
    loader_id = miner.mine_line(LOADER.format(w=1, i=1, ms=1)).template_id

    # 3. the critical line: one node event (the second rank's line falls in the cooldown), one alert
    events = stack.query("SELECT node, source, severity, action, title, message, labels FROM gpuwatch.node_events")
    assert len(events) == 1, events
    ev = events[0]
    assert (ev["node"], ev["source"], ev["severity"], ev["action"]) == ("node-0", "log", "critical", "check_job")
    assert ev["labels"]["pattern"] == "nccl_watchdog_timeout" and "Watchdog caught" in ev["message"]

    # 4. exactly the expected log alerts, each fired once, for the right node and template
    alerts = log_alerts()
    assert sorted((a["alertname"], a["node"], a["status"]) for a in alerts) == sorted(
        (name, node, "firing") for name, node in LOG_ALERTS), alerts
    by_name = {a["alertname"]: a for a in alerts}
    assert by_name["LogNewTemplate"]["labels"]["template_id"] == str(storage_id)
    assert by_name["LogTemplateBurst"]["labels"]["template_id"] == str(loader_id)
    assert by_name["CriticalLogPattern"]["labels"]["severity"] == "critical"
    # their evidence queries run and show the lines behind them
    new_lines = stack.query(by_name["LogNewTemplate"]["evidence_query"])
    assert len(new_lines) == 25 and all("Input/output error" in r["message"] for r in new_lines)
    burst_lines = stack.query(by_name["LogTemplateBurst"]["evidence_query"])
    assert len(burst_lines) == 200 and all(r["message"].startswith("dataloader worker") for r in burst_lines)

    # 5. a metric alert on a node with log activity carries that node's log templates as evidence
    stack.simulate(3, 2, 100, "thermal_runaway@node-2/1:20+60")
    # (the page goes out at once; the log templates follow as an update of the same incident)
    sql = ("SELECT evidence, annotations FROM gpuwatch.alerts WHERE node = 'node-2' AND status = 'firing' "
           "AND has(mapKeys(annotations), 'logs_query') ORDER BY event_ts DESC")

    def explained_hot():
        rows = [r for r in stack.query(sql) if "GpuTemperatureHigh" in r["annotations"].get("conditions", "")]
        return [r for r in rows if any(e["metric"] == "gpu_temp_c" and e.get("value", 0) > 87
                                       for e in orjson.loads(r["evidence"]))]

    hot = wait_for(explained_hot, 60, what="GpuTemperatureHigh on node-2, with its logs")
    evidence = orjson.loads(hot[0]["evidence"])
    burst = [e for e in evidence if e["metric"] == "log_template_burst"]
    # the most-bursting template near the onset is the dataloader line node-2 just flooded
    assert burst and f"template {loader_id}: dataloader worker" in burst[0]["detail"], evidence
    assert burst[0]["value"] >= 1200 and burst[0]["score"] == max(e["score"] for e in burst), evidence
    explained = stack.query(hot[0]["annotations"]["logs_query"])
    assert loader_id in {int(r["template_id"]) for r in explained}

    # 6. the receiver got each log and event alert once, firing (a group's later notification lists the
    #    alerts it already told about again: counted once, by incident)
    def notified() -> list[tuple[str, dict]]:
        seen = {(a["fingerprint"], a["startsAt"], a.get("status", b["status"])): (a.get("status", b["status"]), a)
                for b in receiver.bodies() for a in b["alerts"]}
        return list(seen.values())

    wait_for(lambda: {(a["labels"]["alertname"], a["labels"]["node"]) for _, a in notified()} >= LOG_ALERTS,
             30, what="the log alerts at the receiver")
    time.sleep(2)
    from_logs = [(s, a) for s, a in notified() if (a["labels"]["alertname"], a["labels"]["node"]) in LOG_ALERTS]
    assert sorted((s, a["labels"]["alertname"], a["labels"]["node"]) for s, a in from_logs) == sorted(
        ("firing", name, node) for name, node in LOG_ALERTS), from_logs
    assert {a["fingerprint"] for _, a in from_logs} == {a["fingerprint"] for a in alerts}
