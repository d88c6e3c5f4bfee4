"""A condition: something a rule or detector says is wrong *right now*.

Every source of judgement (threshold rules, anomaly detectors, log patterns,
XID events, absence checks) reports conditions; only :mod:`incidents` turns
them into alert events. That keeps hysteresis, fingerprints and "one alert per
incident" in one place instead of in every detector.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.alerts import Evidence, Severity, alert_fingerprint


@dataclass
class Condition:
    #: Alert name, e.g. ``GpuTemperatureHigh``.
    alertname: str
    #: Identifying labels (node, gpu, job, ...); with alertname they make the fingerprint.
    labels: dict[str, str]
    #: Event time at which the condition was observed to hold.
    ts: float
    severity: Severity = "warning"
    #: How long it must hold before the alert fires (Prometheus ``for``).
    for_s: float = 0.0
    #: How long the alert keeps firing after the condition stops (Prometheus ``keep_firing_for``).
    keep_firing_for_s: float = 0.0
    annotations: dict[str, str] = field(default_factory=dict)
    evidence: list[Evidence] = field(default_factory=list)
    evidence_query: str = ""
    source: str = "rule"
    #: Node this condition belongs to; absence of a report for the node at a later tick clears it.
    node: str = ""
    #: Which stream judges it: a condition is cleared only by a later report on the same
    #: channel for the same node ("metrics" batches, "events", "logs", "absence").
    channel: str = "metrics"

    @property
    def identity(self) -> dict[str, str]:
        return {"alertname": self.alertname, **self.labels}

    @property
    def fingerprint(self) -> str:
        return alert_fingerprint(self.identity)
