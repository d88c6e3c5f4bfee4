"""Tier 3 across nodes: one node slower than the rest of its job.

One node's :class:`NodeDetectors` cannot see the other nodes of its job, so it
emits a :class:`JobSummary` per job per tick (``Observation.job_summaries``).
Route those by job (a topic keyed by job) to a ``JobPeers`` kept per job: it
holds each node's latest summary and compares the node that just reported with
its peers' fresh summaries (a :class:`PeerGroup`, low side, on
``job_tokens_per_s`` by default).

Conditions are only about the node that just reported, with ``node`` set to it,
so an IncidentBook kept beside the JobPeers can be called as
``book.observe(s.node, s.ts, obs.conditions, channel="job_peers")`` (the
conditions carry ``channel="job_peers"``).

>>> jp = JobPeers(job="j1")
>>> for t in range(100):
...     for n in range(4):
...         v = 1000.0 if (n != 2 or t < 80) else 500.0
...         obs = jp.observe(JobSummary("j1", f"n{n}", 1.7e9 + t, {"job_tokens_per_s": v}))
>>> [c.labels["node"] for c in jp.observe(JobSummary("j1", "n2", 1.7e9 + 100, {"job_tokens_per_s": 500.0})).conditions]
['n2']
"""

from __future__ import annotations

from pipelines.decide.condition import Condition
from pipelines.detect.config import DetectionConfig
from pipelines.detect.evidence import evidence, metrics_query
from pipelines.detect.observation import JobSummary, Observation
from schemas.alerts import alert_fingerprint


class JobPeers:
    """The nodes of one job against each other. Picklable; keep one per job."""

    def __init__(self, config: DetectionConfig | None = None, job: str | None = None,
                 stale_s: float = 10.0, forget_after_s: float = 600.0) -> None:
        self.config = config if config is not None else DetectionConfig.default()
        self.job = job
        self.stale_s = stale_s
        self.forget_after_s = forget_after_s
        section = self.config.job_peers
        self._det = section.build() if section is not None and section.enabled else None
        self._latest: dict[str, tuple[float, float]] = {}  # node -> (ts, value)
        self._onset: dict[str, float] = {}

    def observe(self, summary: JobSummary) -> Observation:
        out = Observation()
        section = self.config.job_peers
        if self._det is None or section.metric not in summary.values:
            return out
        ts, node = summary.ts, summary.node
        self.job = summary.job
        self._latest[node] = (ts, float(summary.values[section.metric]))
        for n, (t, _) in list(self._latest.items()):
            if ts - t > self.forget_after_s:
                del self._latest[n]
                self._det.forget(n)
        fresh = {n: v for n, (t, v) in self._latest.items() if abs(ts - t) <= self.stale_s}
        scores = self._det.score_many(fresh, ts)
        warm = self._det.warm
        if node == min(fresh):  # learn once per round of reports, not once per node
            self._det.learn_one(fresh, ts)
        z = scores.get(node, 0.0)
        thr = self._det.threshold
        out.scores.append((ts, node, -1, "job_peers", section.metric, float(z), float(thr), int(warm and z >= thr)))
        if warm and z >= thr:
            labels = {"node": node, "job": summary.job}
            spec = section.alert
            fp = alert_fingerprint({"alertname": spec.alertname, **labels})
            onset = self._onset.setdefault(fp, ts)
            base = self._det.baseline(fresh).get(node)
            out.conditions.append(Condition(
                alertname=spec.alertname, labels=labels, ts=ts, severity=spec.severity, for_s=spec.for_s,
                keep_firing_for_s=spec.keep_firing_for_s,
                annotations={"summary": f"{node} runs {section.metric} {fresh[node]:.0f} against its job's "
                                        f"{base:.0f} ({len(fresh)} nodes)", "job": summary.job},
                evidence=[evidence(section.metric, fresh[node], base, z,
                                   f"peer baseline: median of {len(fresh)} nodes of job {summary.job}")],
                evidence_query=metrics_query(self.config.database, node, [-1], [section.metric],
                                             onset - self.config.evidence_lookback_s, ts + 1.0),
                source="job_peers", node=node, channel="job_peers"))
        else:
            self._onset.pop(alert_fingerprint({"alertname": section.alert.alertname, "node": node,
                                               "job": summary.job}), None)
        return out
