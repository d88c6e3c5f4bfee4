"""Tier 7 across nodes: a node that stops reporting, judged from heartbeats on a timer.

A silent node sends nothing that could trigger a check, so the pipeline calls
:meth:`NodeAbsence.check` from a timer. ``now`` is event time: by default the
latest timestamp seen from any node (so a replay decides the same), but a
caller whose whole cluster might go quiet passes ``max(watermark, wall_clock -
allowed_lateness)``.

>>> na = NodeAbsence()
>>> for t in range(0, 100, 10):
...     na.heartbeat("n1", 1.7e9 + t, interval_s=10.0)
...     na.heartbeat("n2", 1.7e9 + t if t < 50 else 1.7e9 + 40, interval_s=10.0)
>>> [c.labels["node"] for c in na.check().conditions]
['n2']
"""

from __future__ import annotations

from datetime import datetime, timezone

from pipelines.decide.condition import Condition
from pipelines.detect.config import DetectionConfig
from pipelines.detect.evidence import evidence, metrics_query
from pipelines.detect.observation import Observation


class NodeAbsence:
    """Last-seen times of every node, and the conditions for those gone silent. Picklable."""

    def __init__(self, config: DetectionConfig | None = None) -> None:
        self.config = config if config is not None else DetectionConfig.default()
        section = self.config.node_absence
        self._det = section.build() if section is not None and section.enabled else None

    def heartbeat(self, node: str, ts: float, interval_s: float) -> None:
        """Record a heartbeat (``schemas.events.Heartbeat``: node, ts, interval_s)."""
        if self._det is not None:
            self._det.expect(node, interval_s, ts)

    def seen(self, node: str, ts: float) -> None:
        """Record any other message from ``node`` (a metric batch proves life too)."""
        if self._det is not None:
            self._det.learn_one({node: 1.0}, ts)

    def forget(self, node: str) -> None:
        """Stop watching ``node``: its partition moved to another worker, which watches it now."""
        if self._det is not None:
            self._det.forget(node)

    def state(self, node: str) -> tuple[float, float] | None:
        """(last seen, usual interval) of ``node``, for a checkpoint; None if not watched."""
        if self._det is None:
            return None
        rec = self._det._seen.get(node)
        return (rec[0], rec[1]) if rec else None

    def restore(self, node: str, last_seen: float, interval_s: float) -> None:
        """Watch ``node`` again from a checkpoint, as if its last heartbeat had just been read."""
        if self._det is not None:
            self._det.expect(node, interval_s, last_seen)

    def now(self) -> float:
        """The latest event time seen from any node."""
        return self._det._now if self._det is not None else 0.0

    def nodes(self) -> list[str]:
        """Every node being watched (pass each to the IncidentBook so a returned node resolves)."""
        return self._det.members() if self._det is not None else []

    def check(self, now: float | None = None) -> Observation:
        """Conditions for every node silent too long at ``now``, each with ``node`` set to that node."""
        out = Observation()
        if self._det is None:
            return out
        now = self.now() if now is None else now
        spec = self.config.node_absence.alert
        for node, s in self._det.score_many({}, now).items():
            if s <= 0:
                continue
            out.scores.append((now, node, -1, "absence", "node", float(s), float(self._det.threshold),
                               int(s >= self._det.threshold)))
            if s < self._det.threshold:
                continue
            last = self._det.last_seen(node)
            iso = datetime.fromtimestamp(last, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            out.conditions.append(Condition(
                alertname=spec.alertname, labels={"node": node}, ts=now, severity=spec.severity,
                for_s=spec.for_s, keep_firing_for_s=spec.keep_firing_for_s,
                annotations={"summary": f"{node} has sent nothing for {now - last:.0f} s", "last_seen": iso},
                evidence=[evidence("heartbeat", None, None, s, f"silent {now - last:.0f} s, last seen {iso}")],
                evidence_query=metrics_query(self.config.database, node, None, [],
                                             last - self.config.evidence_lookback_s, now),
                source="absence", node=node, channel="absence"))
        return out
