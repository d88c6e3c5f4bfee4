"""Inhibition: a firing source alert mutes target alerts that share its ``equal`` labels.

The classic use: when a node is down, its GPU alerts are noise.

>>> from pipelines.notify.config import InhibitRuleConfig
>>> from pipelines.notify.alert import Alert
>>> rule = InhibitRuleConfig(source_matchers=['alertname="NodeDown"'],
...                          target_matchers=['severity="warning"'], equal=["node"])
>>> inh = Inhibitor([rule])
>>> down = Alert("a" * 16, "firing", {"alertname": "NodeDown", "node": "n1"}, {}, 0.0, None, 1.0)
>>> inh.observe(down)
>>> inh.inhibited_by({"alertname": "GpuHot", "severity": "warning", "node": "n1"}, "b" * 16)
'aaaaaaaaaaaaaaaa'
>>> inh.inhibited_by({"alertname": "GpuHot", "severity": "warning", "node": "n2"}, "b" * 16) is None
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.notify.alert import Alert
from pipelines.notify.config import InhibitRuleConfig
from pipelines.notify.matchers import Matcher, matches_all


@dataclass
class _Rule:
    sources: list[Matcher]
    targets: list[Matcher]
    equal: tuple[str, ...]
    #: equal-label values -> fingerprints of firing source alerts with them
    firing_sources: dict[tuple[str, ...], set[str]] = field(default_factory=dict)

    def key(self, labels: dict[str, str]) -> tuple[str, ...]:
        return tuple(labels.get(k, "") for k in self.equal)


class Inhibitor:
    def __init__(self, rules: list[InhibitRuleConfig]) -> None:
        self.rules = [_Rule(r.sources(), r.targets(), tuple(r.equal)) for r in rules]
        self._where: dict[str, list[tuple[_Rule, tuple[str, ...]]]] = {}

    def observe(self, alert: Alert) -> None:
        """Keep the index of firing source alerts current; call on every alert change."""
        for rule, key in self._where.pop(alert.fingerprint, []):
            fps = rule.firing_sources.get(key)
            if fps is not None:
                fps.discard(alert.fingerprint)
                if not fps:
                    del rule.firing_sources[key]
        if not alert.firing:
            return
        placed = []
        for rule in self.rules:
            if matches_all(rule.sources, alert.labels):
                key = rule.key(alert.labels)
                rule.firing_sources.setdefault(key, set()).add(alert.fingerprint)
                placed.append((rule, key))
        if placed:
            self._where[alert.fingerprint] = placed

    def inhibited_by(self, labels: dict[str, str], fingerprint: str) -> str | None:
        """The fingerprint of a firing alert that inhibits this one, or None."""
        for rule in self.rules:
            if not rule.targets or not matches_all(rule.targets, labels):
                continue
            for fp in rule.firing_sources.get(rule.key(labels), ()):
                if fp != fingerprint:
                    return fp
        return None
