"""Prometheus metrics of the notification worker: what came in, what went out, what was dropped.

Each worker has its own registry (served at ``/metrics`` by the HTTP API), so
tests can run several workers in one process.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class NotifyMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events_received = Counter("gpuwatch_notify_events_received_total",
                                       "Alert events read from the alerts topic", registry=r)
        self.events_dropped = Counter("gpuwatch_notify_events_dropped_total",
                                      "Alert events refused, by reason", ["reason"], registry=r)
        self.notifications = Counter("gpuwatch_notify_notifications_total",
                                     "Notification attempts by integration and outcome",
                                     ["integration", "outcome"], registry=r)
        self.muted = Counter("gpuwatch_notify_alerts_muted_total", "Alerts held back by silences or inhibition",
                             ["reason"], registry=r)
        self.latency = Histogram("gpuwatch_notify_delivery_latency_seconds",
                                 "From receiving a new alert event to its first delivery",
                                 buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
                                 registry=r)
        self.active_alerts = Gauge("gpuwatch_notify_active_alerts", "Alerts not yet fully notified", registry=r)
        self.groups = Gauge("gpuwatch_notify_aggregation_groups", "Aggregation groups alive", registry=r)
        self.history_errors = Counter("gpuwatch_notify_history_errors_total",
                                      "History records that could not be published", registry=r)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
