"""Offline replay: run detection over recorded batches, without Kafka or Faust.

This is what ``gpuwatch backtest`` and the benchmarks use, and the shortest way
to use the detectors as a library: feed batches in time order, get score rows
and alert events out, decided exactly as the pipeline decides them (one
:class:`NodeDetectors` and one :class:`~pipelines.decide.IncidentBook` per node).

>>> import time
>>> from agents.simulator import SimulatedCluster
>>> sim = SimulatedCluster(nodes=1, gpus=4, seed=1, start_ts=time.time() - 3600)
>>> bt = Backtest()
>>> for _ in range(5):
...     for b in sim.tick()[0]:
...         obs, alerts = bt.observe(batch_from_dict(b))
>>> len(obs.scores) > 0, alerts
(True, [])
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pipelines.decide.incidents import IncidentBook
from pipelines.detect.config import DetectionConfig
from pipelines.detect.engine import NodeDetectors
from pipelines.detect.job_peers import JobPeers
from pipelines.detect.node_absence import NodeAbsence
from pipelines.detect.observation import Observation
from schemas.alerts import AlertEvent
from schemas.metrics import MetricBatch


class RecordedSample:
    """A trusted sample from a recording: the fields detection reads, without validation's cost."""

    __slots__ = ("gpu", "metric", "value", "labels", "uuid")

    def __init__(self, gpu: int, metric: str, value: float, labels: dict | None = None, uuid: str = "") -> None:
        self.gpu, self.metric, self.value, self.labels, self.uuid = gpu, metric, value, labels or {}, uuid


class RecordedBatch:
    """A trusted batch from a recording (``NodeDetectors.observe`` takes it like a MetricBatch)."""

    __slots__ = ("node", "ts", "samples")

    def __init__(self, node: str, ts: float, samples: list[RecordedSample]) -> None:
        self.node, self.ts, self.samples = node, ts, samples


def batch_from_dict(d: dict, validate: bool = False) -> MetricBatch | RecordedBatch:
    """A batch from its dict form; ``validate=False`` trusts it (fast, for replays of known-good data)."""
    if validate:
        return MetricBatch.model_validate(d)
    return RecordedBatch(d["node"], float(d["ts"]), [
        RecordedSample(s["gpu"], s["metric"], s["value"], s.get("labels"), s.get("uuid", "")) for s in d["samples"]])


def batches_from_rows(rows: Iterable[dict]) -> Iterator[RecordedBatch]:
    """Group sample rows (ts, node, gpu, metric, value[, uuid, unit, labels]) sorted by ts into batches."""
    current: tuple | None = None
    samples: list[RecordedSample] = []
    for r in rows:
        key = (float(r["ts"]), r["node"])
        if key != current:
            if samples:
                yield RecordedBatch(current[1], current[0], samples)
            current, samples = key, []
        samples.append(RecordedSample(int(r["gpu"]), r["metric"], float(r["value"]), r.get("labels"),
                                      r.get("uuid") or ""))
    if samples:
        yield RecordedBatch(current[1], current[0], samples)


class Backtest:
    """Detection and decisions for a whole recording, fed batches in time order.

    Runs what the pipeline runs: threshold rules (when given) and one
    :class:`NodeDetectors` and IncidentBook per node, a :class:`JobPeers` and IncidentBook per job (fed the nodes' job
    summaries), and a :class:`NodeAbsence` checked every ``absence_every_s`` of
    event time.
    """

    def __init__(self, config: DetectionConfig | None = None, absence_every_s: float = 5.0, rules=None) -> None:
        self.config = config if config is not None else DetectionConfig.default()
        #: Threshold rules (a ``pipelines.transforms.rules.RuleSet``) judged with the detectors, as the
        #: pipeline judges them; None runs detectors only.
        self.rules = rules
        self.nodes: dict[str, NodeDetectors] = {}
        self.books: dict[str, IncidentBook] = {}
        self.jobs: dict[str, tuple[JobPeers, IncidentBook]] = {}
        self.absence = NodeAbsence(self.config)
        self.absence_book = IncidentBook()
        self.absence_every_s = absence_every_s
        self._next_absence_check: float | None = None

    def observe(self, batch: MetricBatch | RecordedBatch) -> tuple[Observation, list[AlertEvent]]:
        """Detect on one batch; returns its observation (plus JobPeers' and absence's) and alert events."""
        ts = float(batch.ts)
        nd = self.nodes.get(batch.node)
        if nd is None:
            nd = self.nodes[batch.node] = NodeDetectors(self.config, batch.node)
            self.books[batch.node] = IncidentBook()
        obs = nd.observe(batch)
        if not obs.fresh:
            return obs, []
        if self.rules is not None:
            obs.conditions.extend(self.rules.evaluate(batch.node, (
                (ts, s.gpu, getattr(s, "uuid", "") or "", s.metric, s.value, s.labels or {}) for s in batch.samples)))
        events = self.books[batch.node].observe(batch.node, ts, obs.conditions)
        for summary in obs.job_summaries:
            peers = self.jobs.get(summary.job)
            if peers is None:
                peers = self.jobs[summary.job] = (JobPeers(self.config, summary.job), IncidentBook())
            jp_obs = peers[0].observe(summary)
            obs.scores.extend(jp_obs.scores)
            obs.conditions.extend(jp_obs.conditions)
            events += peers[1].observe(summary.node, summary.ts, jp_obs.conditions, channel="job_peers")
        self.absence.seen(batch.node, ts)
        if self._next_absence_check is None or ts >= self._next_absence_check:
            self._next_absence_check = ts + self.absence_every_s
            events += self.check_absence(ts)
        return obs, events

    def check_absence(self, now: float) -> list[AlertEvent]:
        """The timer's job: conditions for silent nodes, decided per node."""
        ab = self.absence.check(now)
        events = []
        for node in self.absence.nodes():
            events += self.absence_book.observe(node, now, [c for c in ab.conditions if c.node == node],
                                                channel="absence")
        return events
