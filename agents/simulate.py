"""``gpuwatch agent --simulate``: a simulated cluster publishing to real Kafka.

It publishes exactly ``ticks`` scrapes per node, waits for every delivery
report, and prints a JSON summary as its last line, so scripts and tests can
check that what was sent is what arrived downstream.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from agents.publisher import KafkaPublisher
from agents.simulator import Fault, SimulatedCluster


@dataclass
class SimulationPlan:
    nodes: int
    gpus: int
    ticks: int
    interval: float = 1.0
    realtime: bool = False
    seed: int = 0
    faults: list[Fault] = field(default_factory=list)
    metrics_topic: str = "gpuwatch.metrics.v1"
    events_topic: str = "gpuwatch.events.v1"
    #: Epoch of the first scrape; by default the run ends "now" so timestamps are recent.
    start_ts: float | None = None


def run_simulation(plan: SimulationPlan, kafka_config: dict, progress=None) -> dict:
    start_ts = plan.start_ts
    if start_ts is None:
        start_ts = time.time() if plan.realtime else time.time() - plan.ticks * plan.interval
    cluster = SimulatedCluster(nodes=plan.nodes, gpus=plan.gpus, seed=plan.seed, start_ts=start_ts,
                               interval=plan.interval, faults=plan.faults)
    pub = KafkaPublisher(kafka_config)
    samples = batches = events = 0
    t0 = time.monotonic()
    for tick in range(plan.ticks):
        tick_batches, tick_events = cluster.tick()
        for b in tick_batches:
            if pub.publish(plan.metrics_topic, b["node"], b, block_s=30.0):
                samples += len(b["samples"])
                batches += 1
        for e in tick_events:
            if pub.publish(plan.events_topic, e["node"], e, block_s=30.0):
                events += 1
        if progress:
            progress(tick + 1, plan.ticks)
        if plan.realtime:
            time.sleep(max(0.0, t0 + (tick + 1) * plan.interval - time.monotonic()))
    undelivered = pub.flush(60.0)
    st = pub.stats
    return {
        "nodes": plan.nodes, "gpus_per_node": plan.gpus, "ticks": plan.ticks,
        "batches_published": st.by_topic.get(plan.metrics_topic, 0),
        "samples_published": samples if st.failed == 0 and undelivered == 0 and st.dropped_full == 0 else None,
        "samples_queued": samples, "events_published": st.by_topic.get(plan.events_topic, 0),
        "delivery_failed": st.failed + undelivered, "dropped": st.dropped_full,
        "faults": [f"{f.kind}@{f.node}/{f.gpu}:{f.start}" + (f"+{f.duration}" if f.duration else "") for f in plan.faults],
        "first_ts": start_ts, "last_ts": start_ts + (plan.ticks - 1) * plan.interval,
        "elapsed_s": round(time.monotonic() - t0, 3),
    }
