"""A notification: one aggregation group's alerts, on their way to one receiver integration."""

from __future__ import annotations

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
