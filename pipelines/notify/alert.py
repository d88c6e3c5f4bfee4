"""The notifier's view of an alert: an AlertEvent reduced to what routing and receivers need.

Labels here are the *effective* labels: the event's labels plus ``alertname``
and ``severity``, so routes, silences and inhibition rules can match on them as
Alertmanager users expect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from schemas.alerts import AlertEvent


@dataclass
class Alert:
    fingerprint: str
    status: str  # "firing" or "resolved"
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: float
    ends_at: float | None
    event_ts: float
    generator_url: str = ""
    #: When this worker received the event (for latency metrics; not persisted).
    received_at: float = field(default=0.0, compare=False)

    @classmethod
    def from_event(cls, ev: AlertEvent, received_at: float = 0.0) -> "Alert":
        labels = {**ev.labels, "alertname": ev.alertname, "severity": ev.labels.get("severity", ev.severity)}
        annotations = dict(ev.annotations)
        if ev.evidence_query and "evidence_query" not in annotations:
            annotations["evidence_query"] = ev.evidence_query
        return cls(fingerprint=ev.fingerprint, status=ev.status, labels=labels, annotations=annotations,
                   starts_at=ev.starts_at, ends_at=ev.ends_at, event_ts=ev.event_ts,
                   generator_url=ev.annotations.get("generator_url", ""), received_at=received_at)

    @property
    def firing(self) -> bool:
        return self.status == "firing"

    @property
    def incident_id(self) -> str:
        """One incident of this alert (a later re-fire is another incident)."""
        return f"{self.fingerprint}:{self.starts_at:.3f}"

    def to_row(self) -> dict:
        return {"fingerprint": self.fingerprint, "status": self.status, "labels": self.labels,
                "annotations": self.annotations, "starts_at": self.starts_at, "ends_at": self.ends_at,
                "event_ts": self.event_ts, "generator_url": self.generator_url}

    @classmethod
    def from_row(cls, row: dict) -> "Alert":
        return cls(**row)


def rfc3339(ts: float | None) -> str:
    """Alertmanager's time format; a missing end is Go's zero time, as Alertmanager sends it.

    >>> rfc3339(0.0), rfc3339(None)
    ('1970-01-01T00:00:00Z', '0001-01-01T00:00:00Z')
    """
    if ts is None:
        return "0001-01-01T00:00:00Z"
    dt = datetime.fromtimestamp(ts, tz=timezone.utc)
    s = dt.strftime("%Y-%m-%dT%H:%M:%S")
    ms = dt.microsecond // 1000
    return f"{s}.{ms:03d}Z" if ms else f"{s}Z"
