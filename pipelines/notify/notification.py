"""A notification: one aggregation group's alerts, on their way to one receiver integration."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from pipelines.notify.alert import Alert


@dataclass
class Notification:
    """One group's alerts, after muting, on their way to one receiver integration."""

    receiver: str
    group_key: str
    group_labels: dict[str, str]
    alerts: list[Alert]
    external_url: str = ""
    truncated: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def status(self) -> str:
        return "firing" if any(a.firing for a in self.alerts) else "resolved"

    @property
    def idempotency_key(self) -> str:
        """The same for every attempt to deliver this notification, different for any other.

        Built from the group and each alert's incident (fingerprint, start), status
        and event time (which moves with every update of the incident), so a
        retry, or a resend after the notifier restarts mid-retry, repeats the key,
        and a receiver that already processed it can drop the repeat: delivery
        over HTTP is at least once, the key makes it once to whoever checks it.

        >>> a = Alert("fp1", "firing", {}, {}, starts_at=10.0, ends_at=None, event_ts=11.0)
        >>> n = Notification("r", "{}:{node=\\"n1\\"}", {}, [a])
        >>> n.idempotency_key == Notification("r", n.group_key, {}, [a]).idempotency_key
        True
        >>> resolved = Alert("fp1", "resolved", {}, {}, starts_at=10.0, ends_at=20.0, event_ts=20.0)
        >>> n.idempotency_key == Notification("r", n.group_key, {}, [resolved]).idempotency_key
        False
        """
        parts = sorted(f"{a.fingerprint}:{a.starts_at:.3f}:{a.status}:{a.event_ts:.3f}" for a in self.alerts)
        return hashlib.sha256("\n".join([self.group_key, *parts]).encode()).hexdigest()[:32]

    @property
    def firing(self) -> list[Alert]:
        return [a for a in self.alerts if a.firing]

    @property
    def resolved(self) -> list[Alert]:
        return [a for a in self.alerts if not a.firing]

    @property
    def common_labels(self) -> dict[str, str]:
        return _common([a.labels for a in self.alerts])

    @property
    def common_annotations(self) -> dict[str, str]:
        return _common([a.annotations for a in self.alerts])


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    out = dict(maps[0])
    for m in maps[1:]:
        out = {k: v for k, v in out.items() if m.get(k) == v}
    return out
