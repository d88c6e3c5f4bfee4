"""Incident bookkeeping with hysteresis: one firing event per incident, one resolved.

State per fingerprint: *pending* (condition seen, ``for`` not yet elapsed),
*firing* (event sent), and gone (resolved event sent). A condition that stops
being reported keeps firing for ``keep_firing_for`` before it resolves, so a
signal hovering at a threshold does not flap.

All times are event times (the samples' timestamps), so replaying a stream
makes the same decisions. The book is a plain picklable object; the pipeline
keeps one per node and checkpoints it in a Faust table.

>>> book = IncidentBook()
>>> c = Condition("GpuHot", {"node": "n1", "gpu": "0"}, ts=100.0, for_s=10, node="n1")
>>> book.observe("n1", 100.0, [c])
[]
>>> [e.status for e in book.observe("n1", 110.0, [Condition(**{**c.__dict__, "ts": 110.0})])]
['firing']
>>> book.observe("n1", 111.0, [Condition(**{**c.__dict__, "ts": 111.0})])
[]
>>> [e.status for e in book.observe("n1", 112.0, [])]
['resolved']
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.decide.condition import Condition
from pipelines.decide.faults import FaultIncidents
from schemas.alerts import AlertEvent


@dataclass
class _Incident:
    condition: Condition
    first_seen: float
    last_seen: float
    firing: bool = False
    starts_at: float = 0.0


@dataclass
class IncidentBook:
    """Open incidents, keyed by fingerprint."""

    incidents: dict[str, _Incident] = field(default_factory=dict)
    #: When set, condition events are joined into one incident per fault (what the pipeline pages on);
    #: without it every condition is its own alert (backtests score conditions one by one).
    faults: FaultIncidents | None = None

    def observe(self, node: str, ts: float, conditions: list[Condition], *,
                channel: str = "metrics", clears: bool = True) -> list[AlertEvent]:
        """Record the conditions that hold for ``node`` at ``ts``; return alert events to publish.

        With ``clears`` (a full report, such as a metrics scrape), incidents of
        ``node`` on ``channel`` that are not among ``conditions`` are considered
        cleared at ``ts``. Discrete events report only what happened, so they
        pass ``clears=False`` and rely on :meth:`sweep`.
        """
        events: list[AlertEvent] = []
        seen: set[str] = set()
        for cond in conditions:
            fp = cond.fingerprint
            seen.add(fp)
            inc = self.incidents.get(fp)
            if inc is None:
                inc = self.incidents[fp] = _Incident(cond, first_seen=cond.ts, last_seen=cond.ts)
            else:
                inc.condition, inc.last_seen = cond, max(inc.last_seen, cond.ts)
            if not inc.firing and inc.last_seen - inc.first_seen >= cond.for_s:
                inc.firing, inc.starts_at = True, inc.first_seen
                events.append(self._event(fp, inc, "firing", cond.ts))
        for fp, inc in list(self.incidents.items()) if clears else ():
            if fp in seen or inc.condition.node != node:
                continue
            if inc.condition.channel != channel:
                continue
            if not inc.firing:
                del self.incidents[fp]  # pending that never fired: forget quietly
            elif ts - inc.last_seen > inc.condition.keep_firing_for_s:
                del self.incidents[fp]
                events.append(self._event(fp, inc, "resolved", ts))
        return self._joined(events)

    def sweep(self, ts: float, channel: str) -> list[AlertEvent]:
        """Resolve ``channel`` incidents whose ``keep_firing_for`` ran out by event time ``ts``.

        For channels judged by discrete events (an XID), where no later report
        says "it is fine now", time alone ends the incident.
        """
        events = []
        for fp, inc in list(self.incidents.items()):
            if inc.condition.channel == channel and ts - inc.last_seen > inc.condition.keep_firing_for_s:
                del self.incidents[fp]
                if inc.firing:
                    events.append(self._event(fp, inc, "resolved", ts))
        return self._joined(events)

    def _joined(self, events: list[AlertEvent]) -> list[AlertEvent]:
        return self.faults.apply(events) if self.faults is not None and events else events

    def firing(self) -> list[str]:
        return [fp for fp, inc in self.incidents.items() if inc.firing]

    @staticmethod
    def _event(fp: str, inc: _Incident, status: str, ts: float) -> AlertEvent:
        c = inc.condition
        return AlertEvent(
            fingerprint=fp, status=status, alertname=c.alertname, severity=c.severity,
            labels=c.identity, annotations=c.annotations, starts_at=inc.starts_at,
            ends_at=ts if status == "resolved" else None, event_ts=ts, source=c.source,
            evidence=c.evidence, evidence_query=c.evidence_query,
        )
