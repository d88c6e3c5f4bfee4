"""What detection hands to the rest of the pipeline: score rows, conditions, job summaries."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.decide.condition import Condition

#: Column order of :attr:`Observation.scores`, as in ClickHouse ``gpuwatch.anomaly_scores``.
SCORE_COLUMNS = ("ts", "node", "gpu", "detector", "subject", "score", "threshold", "anomalous")


@dataclass
class JobSummary:
    """One node's view of one job at one tick, for :class:`~pipelines.detect.job_peers.JobPeers`."""

    job: str
    node: str
    ts: float
    values: dict[str, float]


@dataclass
class Observation:
    #: Rows for ``anomaly_scores``: (ts, node, gpu, detector, subject, score, threshold, anomalous).
    scores: list[tuple] = field(default_factory=list)
    #: What holds now for the node; feed to ``IncidentBook.observe(node, ts, conditions)``.
    conditions: list[Condition] = field(default_factory=list)
    #: Per-job summaries to forward (keyed by job) to a JobPeers.
    job_summaries: list[JobSummary] = field(default_factory=list)
    #: False when the batch was not newer than the last one seen (a replay after restore):
    #: nothing was learned or judged, so do not pass it to the IncidentBook.
    fresh: bool = True
