"""One incident per fault: conditions that share a cause join one incident, which pages once.

A failing GPU trips several rules at once: an ECC storm is a double-bit error,
an error burst and a single-bit storm; a GPU that falls off the bus is an XID 79
and then a GPU that stops reporting; a node that goes quiet is every one of its
GPUs going quiet. Paging once per condition wakes a person three times for one
fault. :class:`FaultIncidents` sits after the per-condition hysteresis of
:class:`~pipelines.decide.incidents.IncidentBook` and joins condition events
into incidents:

* the first condition that fires opens an incident: one *firing* event, the
  page, named after that condition (its fingerprint is the incident's);
* a condition that fires while an incident is open, within ``join_window_s``
  of its start, on the **same GPU**, or the **same symptom** on another GPU
  of the same node, or the same job, or a node-wide condition that followed a
  GPU's failure (the job it slowed), joins it: a *firing* event with the same fingerprint and start
  (an update: the notifier's dedup does not page again), listing every
  condition as evidence;
* the incident resolves once every condition in it has resolved.

>>> from schemas.alerts import AlertEvent
>>> def ev(name, status, ts, gpu="1"):
...     return AlertEvent(fingerprint=f"{abs(hash((name, gpu))) % 16**16:016x}", status=status, alertname=name,
...                       labels={"node": "n1", "gpu": gpu}, starts_at=ts, event_ts=ts)
>>> faults = FaultIncidents()
>>> [(e.alertname, e.status) for e in faults.apply([ev("GpuEccDoubleBitErrors", "firing", 10.0)])]
[('GpuEccDoubleBitErrors', 'firing')]
>>> [e.annotations["conditions"] for e in faults.apply([ev("GpuEccErrorBurst", "firing", 12.0)])]
['GpuEccDoubleBitErrors, GpuEccErrorBurst']
>>> faults.apply([ev("GpuEccDoubleBitErrors", "resolved", 70.0)])
[]
>>> [(e.alertname, e.status) for e in faults.apply([ev("GpuEccErrorBurst", "resolved", 80.0)])]
[('GpuEccDoubleBitErrors', 'resolved')]
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.decide.wording import describe, evidence_lines
from schemas.alerts import AlertEvent, Evidence

#: Different names for one symptom: a GPU that stops reporting and a node that stops reporting.
SHARED_SYMPTOM = {"GpuStoppedReporting": "stopped reporting", "NodeStoppedReporting": "stopped reporting"}

_RANK = {"info": 0, "warning": 1, "critical": 2}
#: An event carries at most this many evidence items (the wire's bound).
MAX_EVIDENCE = 32


def symptom(alertname: str) -> str:
    return SHARED_SYMPTOM.get(alertname, alertname)


@dataclass
class _Fault:
    lead: AlertEvent
    #: condition fingerprint -> its latest event (firing, or resolved once it ended)
    members: dict[str, AlertEvent] = field(default_factory=dict)
    #: condition fingerprints still firing
    open: set[str] = field(default_factory=set)
    #: evidence found later (log templates around the onset), kept for every later update
    extra_evidence: list[Evidence] = field(default_factory=list)
    extra_annotations: dict[str, str] = field(default_factory=dict)
    last_event_ts: float = 0.0

    @property
    def node(self) -> str:
        return self.lead.labels.get("node", "")

    def covers(self, ev: AlertEvent, window_s: float) -> bool:
        """Does ``ev`` share this fault's cause? Same node, close in time, and one of: same GPU,
        same symptom, same job, or a node-wide condition (a job slowing down, the node's logs)
        that began after a GPU of the node failed: a consequence of it. A GPU condition never
        joins a node-wide incident but by symptom or job."""
        labels = ev.labels
        if labels.get("node", "") != self.node or abs(ev.starts_at - self.lead.starts_at) > window_s:
            return False
        gpu, job = labels.get("gpu"), labels.get("job")
        for m in self.members.values():
            other = m.labels
            if gpu is not None and other.get("gpu") == gpu:
                return True
            if symptom(m.alertname) == symptom(ev.alertname):
                return True
            if job and other.get("job") == job:
                return True
        return gpu is None and ev.starts_at >= self.lead.starts_at and "gpu" in self.lead.labels


@dataclass
class FaultIncidents:
    """Open faults of one node (or job), keyed by the incident fingerprint. Picklable."""

    join_window_s: float = 300.0
    faults: dict[str, _Fault] = field(default_factory=dict)
    #: condition fingerprint -> incident fingerprint
    member_of: dict[str, str] = field(default_factory=dict)

    def apply(self, events: list[AlertEvent]) -> list[AlertEvent]:
        """Turn condition events into incident events: a page for a new fault, an update when a
        condition joins, a resolution when the last condition of a fault resolves."""
        changed: dict[str, str] = {}  # incident fingerprint -> "new" | "update" | "resolved" | "new and resolved"
        passthrough: list[AlertEvent] = []
        for ev in events:
            if ev.status == "firing":
                self._fire(ev, changed)
            else:
                self._resolve(ev, changed, passthrough)
        out = list(passthrough)
        for fp, what in changed.items():
            fault = self.faults[fp]
            if what in ("new", "update", "new and resolved"):
                out.append(self._event(fault, "firing"))
            if what in ("resolved", "new and resolved"):
                out.append(self._event(fault, "resolved"))
                del self.faults[fp]
        return out

    def add_evidence(self, fingerprint: str, evidence: list[Evidence], annotations: dict[str, str],
                     ts: float | None = None) -> AlertEvent | None:
        """Evidence found after the page (the log lookup): an update of the still-open incident, or None."""
        fault = self.faults.get(fingerprint)
        if fault is None or not fault.open or not (evidence or annotations):
            return None
        fault.extra_evidence = (fault.extra_evidence + evidence)[:MAX_EVIDENCE]
        fault.extra_annotations.update(annotations)
        return self._event(fault, "firing", ts)

    def firing(self) -> list[str]:
        return [fp for fp, f in self.faults.items() if f.open]

    # -- transitions ----------------------------------------------------------------------------
    def _fire(self, ev: AlertEvent, changed: dict[str, str]) -> None:
        fp = self.member_of.get(ev.fingerprint)
        fault = self.faults.get(fp) if fp else None
        if fault is None:
            fault = next((f for f in self.faults.values() if f.open and f.covers(ev, self.join_window_s)), None)
        if fault is None:
            fp = ev.fingerprint
            fault = self.faults[fp] = _Fault(lead=ev)
            changed[fp] = "new"
        else:
            fp = fault.lead.fingerprint
            changed.setdefault(fp, "update")
            if changed[fp] == "resolved":  # resolved and re-joined in one batch: still open
                changed[fp] = "update"
        fault.members[ev.fingerprint] = ev
        fault.open.add(ev.fingerprint)
        self.member_of[ev.fingerprint] = fp

    def _resolve(self, ev: AlertEvent, changed: dict[str, str], passthrough: list[AlertEvent]) -> None:
        fp = self.member_of.pop(ev.fingerprint, None)
        fault = self.faults.get(fp) if fp else None
        if fault is None:  # fired before faults were tracked (an older checkpoint): resolve it as it was
            passthrough.append(ev)
            return
        fault.members[ev.fingerprint] = ev
        fault.open.discard(ev.fingerprint)
        if not fault.open:  # the last condition ended (one of several ending is not worth a message)
            changed[fp] = "new and resolved" if changed.get(fp) == "new" else "resolved"

    # -- the message ----------------------------------------------------------------------------
    def _event(self, fault: _Fault, status: str, ts: float | None = None) -> AlertEvent:
        lead, members = fault.lead, list(fault.members.values())
        latest = max(m.event_ts for m in members)
        event_ts = max(latest if ts is None else ts, fault.last_event_ts + 0.001)
        fault.last_event_ts = event_ts
        severity = max((m.severity for m in members), key=lambda s: _RANK.get(s, 0))
        names = list(dict.fromkeys(m.alertname for m in members))
        gpus = sorted({m.labels["gpu"] for m in members if "gpu" in m.labels}, key=lambda g: (len(g), g))
        annotations = {**lead.annotations, **fault.extra_annotations, "conditions": ", ".join(names)}
        evidence, lines = _evidence(members, fault.extra_evidence)
        plain = next((describe(e, lead.labels) for e in lead.evidence if e.value is not None), "")
        if plain:  # the detector's own words stay, under another name
            annotations.setdefault("detector_summary", lead.annotations.get("summary", ""))
        if len(members) > 1:
            annotations["summary"] = _summary(fault.node, gpus, names, lead, plain)
        elif plain:
            annotations["summary"] = f"{fault.node}: {plain}"[:1024]
        if len(gpus) > 1:
            annotations["gpus"] = ", ".join(gpus)
        for m in members[1:]:
            if m.evidence_query:
                annotations.setdefault(f"evidence_query_{m.alertname}", m.evidence_query)
        annotations["evidence"] = "\n".join(lines)[:4000]
        return lead.model_copy(update={
            "status": status, "severity": severity, "annotations": annotations, "evidence": evidence,
            "event_ts": event_ts, "ends_at": event_ts if status == "resolved" else None,
        })


def _summary(node: str, gpus: list[str], names: list[str], lead: AlertEvent, plain: str) -> str:
    where = (f"GPU {gpus[0]}" if len(gpus) == 1 else f"GPUs {', '.join(gpus)}" if gpus else "the node")
    first = plain or lead.annotations.get("summary", lead.alertname)
    return f"{node} {where}: {len(names)} conditions, one fault ({', '.join(names)}). First: {first}"[:1024]


def _evidence(members: list[AlertEvent], extra: list[Evidence]) -> tuple[list[Evidence], list[str]]:
    """Each condition's own evidence, every condition represented, then the later-found evidence;
    and the same in plain words, one line each, headed by the condition it belongs to."""
    share = max(1, (MAX_EVIDENCE - min(len(extra), 6)) // max(1, len(members)))
    out: list[Evidence] = []
    lines: list[str] = []
    for m in members:
        items = list(m.evidence) or [Evidence(metric=m.alertname, detail=m.annotations.get("summary", "")[:1024])]
        out.extend(items[:share])
        state = "" if m.status == "firing" else " (resolved)"
        lines.append(f"{m.alertname}{state}: {m.annotations.get('summary', '')}".rstrip(": "))
        lines.extend("  " + line for line in evidence_lines(items[:share], m.labels))
    lines.extend(evidence_lines(extra))
    return (out + extra)[:MAX_EVIDENCE], lines
