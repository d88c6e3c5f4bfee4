"""Kafka topics: names, partition counts, keys and retention, declared once.

Every producer keys by node id, so one node's messages stay in order on one
partition and per-node state (windows, detectors, alert state) lives with the
worker that owns that partition. Partitions are the ceiling on workers: the
node-keyed topics have room for 64 (a deployment may set more, see
``GPUWATCH_TOPIC_PARTITIONS``); they share one count, so a node's topics land on
the same partition number.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    key: str
    purpose: str
    config: dict[str, str] = field(default_factory=dict)


#: Partitions of every node-keyed topic: one worker per partition at most.
NODE_PARTITIONS = 64

METRICS = TopicSpec("gpuwatch.metrics.v1", NODE_PARTITIONS, "node", "metric batches, one per node per scrape",
                    {"retention.ms": str(24 * 3600 * 1000), "compression.type": "producer"})
LOGS = TopicSpec("gpuwatch.logs.v1", NODE_PARTITIONS, "node", "log batches tailed by node agents",
                 {"retention.ms": str(24 * 3600 * 1000)})
EVENTS = TopicSpec("gpuwatch.events.v1", NODE_PARTITIONS, "node", "XID/SXID and other discrete node events")
HEARTBEATS = TopicSpec("gpuwatch.heartbeats.v1", NODE_PARTITIONS, "node", "agent heartbeats and GPU inventory")
ALERTS = TopicSpec("gpuwatch.alerts.v1", 3, "fingerprint", "alert events, firing and resolved")
NOTIFICATIONS = TopicSpec("gpuwatch.notifications.v1", 3, "fingerprint",
                          "notification attempts, silences and acks, for the history tables")
DEADLETTER = TopicSpec("gpuwatch.deadletter.v1", 3, "source topic",
                       "refused messages with the reason", {"retention.ms": str(7 * 24 * 3600 * 1000)})

TOPICS: dict[str, TopicSpec] = {
    t.name: t for t in (METRICS, LOGS, EVENTS, HEARTBEATS, ALERTS, NOTIFICATIONS, DEADLETTER)
}
