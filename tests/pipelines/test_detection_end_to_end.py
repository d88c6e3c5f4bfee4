"""Detection on real parts: every simulated fault kind alerts on its GPU, and a SIGKILLed worker resumes trained.

Both tests run the real pipeline subprocess against the session's Kafka broker
and read what it decided from ``gpuwatch.alerts`` through its /query endpoint.
All decisions are in event time, so the simulations publish as fast as they can.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, TopicPartition

from agents.publisher import KafkaPublisher
from agents.simulator import FAULT_KINDS, Fault, SimulatedCluster
from infra.kafka.broker import free_port
from schemas.topics import EVENTS, METRICS
from tests.stack import wait_for

pytestmark = pytest.mark.integration

#: Detectors warm up in 60 samples (robust z-scores, straggler, hot-spot peers; counters one more).
WARM_TICK = 80

#: fault kind -> (node, gpu, fault spec, alertnames that must fire, of which these must also resolve in the run).
#: Each fault has a node of its own, so the other three GPUs of every node are the healthy controls.
FAULTS: dict[str, tuple[str, int, str, set[str], set[str]]] = {
    "thermal_runaway": ("node-0", 0, f"thermal_runaway@node-0/0:{WARM_TICK}+40",
                        {"GpuTemperatureHigh", "GpuHotterThanPeers"}, {"GpuTemperatureHigh", "GpuHotterThanPeers"}),
    "ecc_storm": ("node-1", 1, f"ecc_storm@node-1/1:{WARM_TICK}+40",
                  {"GpuEccErrorBurst", "GpuEccSingleBitStorm", "GpuEccDoubleBitErrors"},
                  {"GpuEccErrorBurst", "GpuEccSingleBitStorm", "GpuEccDoubleBitErrors"}),
    # the GPU stays off the bus: nothing resolves
    "xid79": ("node-2", 2, f"xid79@node-2/2:{WARM_TICK}", {"GpuXidError", "GpuStoppedReporting"}, set()),
    "straggler": ("node-3", 3, f"straggler@node-3/3:{WARM_TICK}+40", {"GpuStraggler"}, {"GpuStraggler"}),
    # the exhaustion forecast warms in 10 samples; starting early leaves the run time to fill the
    # framebuffer (the threshold rule) and, after the leak stops, to resolve both
    "memory_leak": ("node-4", 0, "memory_leak@node-4/0:20+150",
                    {"GpuMemoryExhaustionForecast", "GpuMemoryNearlyFull"},
                    {"GpuMemoryExhaustionForecast", "GpuMemoryNearlyFull"}),
    "nvlink_degradation": ("node-5", 1, f"nvlink_degradation@node-5/1:{WARM_TICK}+40",
                           {"GpuNvlinkErrors", "NvlinkCrcErrors"}, {"GpuNvlinkErrors", "NvlinkCrcErrors"}),
    "stalled_gpu": ("node-6", 2, f"stalled_gpu@node-6/2:{WARM_TICK}+40", {"GpuStalled"}, {"GpuStalled"}),
    # a job-level alert (labels node + job, no GPU); the diverged loss stays high, so it keeps firing
    "loss_divergence": ("node-7", 3, f"loss_divergence@node-7/3:{WARM_TICK}+40", {"JobTrainingDiverging"}, set()),
}
TICKS = 310  # the last resolution (the memory forecast, keep_firing_for 120 s) lands near tick 290


def test_every_fault_kind_alerts_on_its_gpu_and_nowhere_else(stack, receiver):
    assert set(FAULTS) == set(FAULT_KINDS), "a new fault kind needs an expected alert here"
    stack.start_pipeline()
    # a port of its own: other suites' notifiers may hold the default one
    notifier = stack.spawn("notify", "notify", "--webhook", receiver.url,
                           GPUWATCH_NOTIFY_LISTEN=f"127.0.0.1:{free_port()}")
    notifier.wait_for_line("notify: ready")
    summary = stack.simulate(8, 4, TICKS, *(spec for *_, spec, _, _ in FAULTS.values()))
    t0 = summary["first_ts"]

    sql = ("SELECT alertname, node, gpu, status, source, toUnixTimestamp64Milli(starts_at) / 1000 AS starts_at, "
           "labels, annotations, evidence_query FROM gpuwatch.alerts ORDER BY event_ts")

    def conditions(r) -> set[str]:  # one incident per fault: the conditions that joined it
        return {r["alertname"]} | {n.strip() for n in r["annotations"].get("conditions", "").split(",") if n.strip()}

    def named(rows, node, status):
        return set().union(*(conditions(r) for r in rows if r["node"] == node and r["status"] == status))

    def got():
        rows = stack.query(sql)
        return all(names <= named(rows, node, "firing") and (not resolving or named(rows, node, "resolved"))
                   for node, _, _, names, resolving in FAULTS.values()) and rows

    wait_for(got, 150, interval=1.0, what="every expected alert to fire and resolve")
    time.sleep(3)  # anything unexpected would have been decided by now
    rows = stack.query(sql)

    faulty = {(node, gpu) for node, gpu, *_ in FAULTS.values()}
    for kind, (node, gpu, spec, names, resolving) in FAULTS.items():
        onset = t0 + Fault.parse(spec).start
        mine = [r for r in rows if r["node"] == node and r["alertname"] in names]
        for r in mine:
            if r["alertname"] == "JobTrainingDiverging":
                assert r["gpu"] == -1 and r["labels"]["job"], (kind, r)
            else:
                assert r["gpu"] == gpu, (kind, r)
            # raised by the fault, not before it (nothing fires while detectors warm up)
            assert r["starts_at"] >= onset - 1, (kind, r["alertname"], r["starts_at"] - onset)
        # one incident per fault: it fires (then is updated as conditions join), and resolves once if it ends
        assert len({(r["alertname"], r["starts_at"]) for r in mine}) == 1, (kind, mine)
        statuses = [r["status"] for r in mine]
        want_end = ["resolved"] if resolving else ["firing"]
        assert statuses[0] == "firing" and statuses[-1:] == want_end and statuses.count("resolved") <= 1, \
            (kind, statuses)

    # no alert for a healthy GPU (each node's other three), nor any condition beyond the expected ones
    assert all((r["node"], r["gpu"]) in faulty or r["alertname"] == "JobTrainingDiverging" for r in rows), rows
    expected = {(node, gpu if name != "JobTrainingDiverging" else -1, name)
                for node, gpu, _, names, _ in FAULTS.values() for name in names}
    stray = {(r["node"], r["gpu"], r["alertname"]) for r in rows} - expected
    assert not stray, f"alerts beyond the injected faults: {sorted(stray)}"
    for node, _, _, names, _ in FAULTS.values():
        assert named(rows, node, "firing") <= names, (node, named(rows, node, "firing") - names)

    # the detector tiers (not only threshold rules) named the faults that rules cannot see
    sources = {r["alertname"]: r["source"] for r in rows if r["status"] == "firing"}
    assert sources["GpuStraggler"] == sources["GpuStalled"] == "straggler" and sources["GpuXidError"] == "xid"

    # Alertmanager-style webhook: every incident is paged as firing, and every condition that joined it reaches
    # the receiver. A condition joining late is sent in a firing update, or, when the replay (minutes of data in
    # about a second) puts the update and the resolution in one group interval (1 s), in the resolution: a
    # group's notification carries each alert's state at that moment, as Alertmanager's does.
    def received(status: str | None = "firing"):
        return [a for b in receiver.bodies() for a in b["alerts"] if status is None or a["status"] == status]

    def received_names():
        return {n.strip() for a in received(None) for n in a["annotations"].get("conditions", "").split(",")}

    def paged():
        return {(a["labels"]["alertname"], a["labels"]["node"]) for a in received()}

    all_names = set().union(*(names for *_, names, _ in FAULTS.values()))
    incidents = {(r["alertname"], r["node"]) for r in rows if r["status"] == "firing"}
    wait_for(lambda: paged() >= incidents and received_names() >= all_names, 60,
             what="the receiver to be paged for every incident and to get every condition")
    # every firing alert carries an evidence query that shows its data
    for a in received():
        labels = a["labels"]
        query = a["annotations"].get("evidence_query", "")
        assert query.lstrip().upper().startswith("SELECT") and f"node = '{labels['node']}'" in query, a
        evidence = stack.query(query)
        assert evidence, (labels["alertname"], query)
        if labels["alertname"] == "GpuXidError":  # the node's events around the XID
            assert ("xid", 79, int(labels["gpu"])) in {(e["source"], e["code"], e["gpu"]) for e in evidence}, evidence
        elif "node" in evidence[0]:  # the detectors' queries name the series they show
            assert {e["node"] for e in evidence} == {labels["node"]}, (labels["alertname"], query)
            if "gpu" in labels:  # peer comparisons show the neighbours too
                assert int(labels["gpu"]) in {e["gpu"] for e in evidence}, (labels["alertname"], query)


# -- restart ---------------------------------------------------------------------------------------------------

NODES, GPUS = 4, 4


class LiveCluster:
    """A simulated cluster the test keeps ticking across a pipeline restart (its agents never restart).

    ``rename`` publishes its nodes under another name, so two clusters can share the topics.
    """

    def __init__(self, stack, start_ts: float, faults: list[str], seed: int, rename: str | None = None) -> None:
        self.sim = SimulatedCluster(nodes=NODES, gpus=GPUS, seed=seed, start_ts=start_ts,
                                    faults=[Fault.parse(f) for f in faults])
        self.rename = rename
        self.metrics, self.events = stack.topic(METRICS.name), stack.topic(EVENTS.name)
        self.samples = 0

    def ts(self, tick: int) -> float:
        return self.sim.start_ts + tick * self.sim.interval

    def _named(self, msg: dict) -> dict:
        if self.rename is None:
            return msg
        msg["node"] = msg["node"].replace("node-", self.rename)
        for s in msg.get("samples", ()):
            if "labels" in s and "job" in s["labels"]:
                s["labels"] = {k: f"{self.rename}{v}" for k, v in s["labels"].items()}
        return msg

    def tick(self, pub: KafkaPublisher) -> None:
        batches, events = self.sim.tick()
        for b in batches:
            b = self._named(b)
            assert pub.publish(self.metrics, b["node"], b, block_s=30.0)
            self.samples += len(b["samples"])
        for e in events:
            e = self._named(e)
            assert pub.publish(self.events, e["node"], e, block_s=30.0)


def _committed_everything(bootstrap: str, group: str, topic: str) -> bool:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        parts = [TopicPartition(topic, p) for p in range(METRICS.partitions)]
        committed = c.committed(parts, timeout=10)
        # an empty partition has nothing committed (offset -1001) and a high watermark of 0
        return all(tp.offset >= c.get_watermark_offsets(tp, timeout=10)[1] or
                   c.get_watermark_offsets(tp, timeout=10)[1] == 0 for tp in committed)
    finally:
        c.close()


def test_sigkilled_worker_restarts_trained_without_alert_storm_or_duplicate_pages(stack, bootstrap):
    interval = 1.0  # GPUWATCH_CHECKPOINT_INTERVAL_S
    # offsets are committed once a node's open 1-minute window closes: on idle, after 2 s instead of 10
    # and the broker gives up on the killed worker's group membership after 10 s instead of Faust's 60
    env = {"GPUWATCH_CHECKPOINT_INTERVAL_S": str(interval), "GPUWATCH_WINDOW_IDLE_CLOSE_S": "2",
           "BROKER_SESSION_TIMEOUT": "10", "BROKER_HEARTBEAT_INTERVAL": "2"}
    first = stack.start_pipeline(**env)
    warm_ticks, tail_ticks, after_ticks, fault_after = 90, 5, 30, 3
    restart_tick = warm_ticks + tail_ticks
    start = time.time() - restart_tick - after_ticks
    straggler_tick = restart_tick + fault_after
    # the warm cluster: an ECC storm already firing when the worker dies, and a straggler soon after the restart
    warm = LiveCluster(stack, start, ["ecc_storm@node-0/0:70", f"straggler@node-1/2:{straggler_tick}"], seed=7)
    pub = KafkaPublisher({"bootstrap.servers": bootstrap})

    def processed(n: int) -> None:
        wait_for(lambda: stack.scalar("SELECT count() FROM gpuwatch.metrics_raw") >= n, 120,
                 what=f"{n} stored samples")

    for _ in range(warm_ticks):
        warm.tick(pub)
    assert pub.flush(60) == 0
    processed(warm.samples)
    # Detector state is checkpointed when a node's batch arrives at least `interval` after the last
    # checkpoint; a few more ticks after a pause make every node's checkpoint a trained one.
    time.sleep(interval * 1.5)
    for _ in range(tail_ticks):
        warm.tick(pub)
    assert pub.flush(60) == 0
    processed(warm.samples)
    # nothing is left to replay, so whatever the restarted worker knows comes from its checkpoints
    wait_for(lambda: _committed_everything(bootstrap, f"{stack.prefix}-pipeline", warm.metrics), 60,
             what="the worker to commit every metrics offset")
    before = stack.query("SELECT fingerprint, alertname, node, gpu, status, annotations['conditions'] AS conditions "
                         "FROM gpuwatch.alerts")
    # the detector's burst is firing, as its own incident or as a condition of the storm's one incident
    assert any((r["node"], r["gpu"], r["status"]) == ("node-0", 0, "firing")
               and "GpuEccErrorBurst" in {r["alertname"], *r["conditions"].replace(" ", "").split(",")}
               for r in before), before
    assert {(r["node"], r["gpu"], r["status"]) for r in before} == {("node-0", 0, "firing")}, before

    first.kill()
    assert first.popen.returncode == -9
    stack.start_pipeline(**env)

    # After the restart, the same cluster goes on, and a cluster the worker has never seen starts beside
    # it with the same straggler at the same delay: its detectors are as cold as lost state would be.
    cold = LiveCluster(stack, warm.ts(restart_tick), [f"straggler@node-1/2:{fault_after}"], seed=8, rename="cold-")
    for _ in range(after_ticks):
        warm.tick(pub)
        cold.tick(pub)
    assert pub.flush(60) == 0
    total = warm.samples + cold.samples
    processed(total)
    onset = warm.ts(straggler_tick)
    sql = ("SELECT fingerprint, alertname, node, gpu, status, source, "
           "toUnixTimestamp64Milli(starts_at) / 1000 AS starts_at, toUnixTimestamp64Milli(event_ts) / 1000 AS event_ts "
           "FROM gpuwatch.alerts ORDER BY event_ts")
    wait_for(lambda: any(r["alertname"] == "GpuStraggler" for r in stack.query(sql)), 60,
             what="the straggler alert after the restart")
    time.sleep(3)  # anything more would have been decided by now
    rows = stack.query(sql)

    # (b) no warm-up gap: the restored straggler detector pages within seconds of the onset ...
    straggler = [r for r in rows if r["alertname"] == "GpuStraggler"]  # the page, then its updates
    assert {(r["node"], r["gpu"], r["status"], r["source"], r["starts_at"]) for r in straggler} == {
        ("node-1", 2, "firing", "straggler", straggler[0]["starts_at"])}, straggler
    assert onset - 0.01 <= straggler[0]["starts_at"] and straggler[0]["event_ts"] - onset <= 5.0, straggler
    # ... while detectors without that history miss the same fault over the whole run after the restart
    assert not [r for r in rows if r["node"].startswith("cold-")], rows

    # (a) no alert storm: after the restart nothing fires for a healthy GPU, and the incident that was
    # firing when the worker died is not paged again
    after = [r for r in rows if r["event_ts"] >= warm.ts(restart_tick)]
    assert {(r["node"], r["gpu"]) for r in after if r["status"] == "firing"} <= {("node-0", 0), ("node-1", 2)}, after
    firing = {}  # fingerprint -> the incidents (starts) it paged; later rows of one incident are updates
    for r in rows:
        if r["status"] == "firing":
            firing.setdefault(r["fingerprint"], set()).add(r["starts_at"])
    assert all(len(v) == 1 for v in firing.values()), {fp: v for fp, v in firing.items() if len(v) > 1}
    ecc = [r for r in rows if (r["node"], r["gpu"]) == ("node-0", 0)]  # the storm's one incident, however named
    assert {r["status"] for r in ecc} == {"firing"}, ecc  # the storm goes on: still one incident, still firing
