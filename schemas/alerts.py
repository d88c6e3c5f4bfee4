"""Alert events: the pipeline's decision, published on the alerts topic.

An alert is identified by its fingerprint, a stable hash of its identifying
labels (as Alertmanager does), so every event of one incident, firing or
resolved, from any worker, shares one key.

>>> fp = alert_fingerprint({"alertname": "GpuHot", "node": "n1", "gpu": "3"})
>>> fp == alert_fingerprint({"gpu": "3", "node": "n1", "alertname": "GpuHot"})
True
>>> len(fp)
16
"""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import Field

from schemas.base import FiniteFloat, Labels, WireModel

AlertStatus = Literal["firing", "resolved"]
Severity = Literal["info", "warning", "critical"]


def alert_fingerprint(labels: dict[str, str]) -> str:
    """Stable 64-bit hex digest of a label set, independent of key order."""
    h = hashlib.blake2b(digest_size=8)
    for k in sorted(labels):
        h.update(k.encode())
        h.update(b"\xff")
        h.update(str(labels[k]).encode())
        h.update(b"\xff")
    return h.hexdigest()


class Evidence(WireModel):
    """One signal that made the decision, against what was normal for it."""

    metric: str = Field(max_length=128)
    value: FiniteFloat | None = None
    baseline: FiniteFloat | None = None
    score: FiniteFloat | None = None
    detail: str = Field(default="", max_length=1024)


class AlertEvent(WireModel):
    v: Literal[1] = 1
    kind: Literal["alert"] = "alert"
    fingerprint: str = Field(pattern=r"^[0-9a-f]{16}$")
    status: AlertStatus
    alertname: str = Field(max_length=128)
    severity: Severity = "warning"
    labels: Labels
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: FiniteFloat
    ends_at: FiniteFloat | None = None
    #: When this event was decided; with fingerprint and status it identifies the event.
    event_ts: FiniteFloat
    source: str = Field(default="rule", max_length=64, description="rule or detector that decided")
    evidence: list[Evidence] = Field(default_factory=list, max_length=32)
    evidence_query: str = Field(default="", max_length=4096, description="ClickHouse SQL that shows the evidence")

    @property
    def event_id(self) -> str:
        """Unique per incident transition: the notification log's dedup key."""
        return f"{self.fingerprint}:{self.status}:{self.starts_at:.3f}"
