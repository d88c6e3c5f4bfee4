"""Job peers: one node slower than the rest of its job, across workers.

A node's detectors see only that node, so each emits a per-job summary per
tick; the metrics processor re-keys those by job onto an internal topic, and
this processor keeps a :class:`~pipelines.detect.job_peers.JobPeers` and an
incident book per job, wherever that job's partition lives.

Summaries of one job come from different partitions, so they arrive out of
event-time order (one node's backlog may be read before another's). A
:class:`JobClock` holds them until every live node of the job has reported up
to that time, then hands them over in time order, so peers are compared at
the same moment.
"""

from __future__ import annotations

import heapq
import time
from typing import Any, Callable

import orjson

from pipelines import telemetry
from pipelines.context import PipelineContext
from pipelines.decide import IncidentBook
from pipelines.detect.config import DetectionConfig
from pipelines.detect.job_peers import JobPeers
from pipelines.detect.observation import JobSummary


class JobClock:
    """Releases a job's summaries in event-time order once every live node has caught up.

    A node counts as live while its summaries keep *arriving* (wall time): a
    node whose backlog is merely being read later is waited for, a node that
    has gone quiet is not.

    >>> clock = JobClock()
    >>> clock.add(JobSummary("j", "a", 10.0, {}))
    []
    >>> [(s.node, s.ts) for s in clock.add(JobSummary("j", "b", 11.0, {}))]
    [('a', 10.0)]
    """

    def __init__(self, silent_after_s: float = 30.0) -> None:
        self.silent_after_s = silent_after_s
        self._pending: list[tuple[float, int, JobSummary]] = []
        self._latest: dict[str, tuple[float, float]] = {}  # node -> (newest ts, wall time of arrival)
        self._seq = 0

    def add(self, summary: JobSummary, now: float | None = None) -> list[JobSummary]:
        now = time.monotonic() if now is None else now
        self._seq += 1
        heapq.heappush(self._pending, (summary.ts, self._seq, summary))
        prev = self._latest.get(summary.node, (summary.ts, now))[0]
        self._latest[summary.node] = (max(prev, summary.ts), now)
        live = [ts for ts, seen in self._latest.values() if now - seen <= self.silent_after_s]
        if len(live) < 2:
            return []
        watermark = min(live)
        out = []
        while self._pending and self._pending[0][0] <= watermark:
            out.append(heapq.heappop(self._pending)[2])
        return out


def encode_summaries(summaries: list[JobSummary]) -> bytes:
    """One message of a job's summaries (a JSON list; a single object is read as a list of one)."""
    return orjson.dumps([{"job": s.job, "node": s.node, "ts": s.ts, "values": s.values} for s in summaries])


def decode_summaries(value: bytes) -> list[JobSummary]:
    d = orjson.loads(value)
    return [JobSummary(str(e["job"]), str(e["node"]), float(e["ts"]), {str(k): float(v) for k, v in e["values"].items()})
            for e in (d if isinstance(d, list) else [d])]


class JobPeersProcessor:
    """Per job: peer statistics, an incident book and an event-time clock.

    The incident book is checkpointed through ``save_book(job, book)`` whenever
    it changes and restored with ``restore_book(job)`` when a job is first seen,
    so a job whose partition moves (or a restart) neither loses nor re-pages an
    open incident. Peer statistics and the clock start again from the next
    summaries. A revoked partition takes its jobs with it (:meth:`forget_partitions`).
    """

    def __init__(self, ctx: PipelineContext, config: DetectionConfig, *,
                 restore_book: Callable[[str], IncidentBook | None] | None = None,
                 save_book: Callable[[str, IncidentBook], None] | None = None) -> None:
        self.ctx = ctx
        self.config = config
        self.restore_book = restore_book
        self.save_book = save_book
        self.jobs: dict[str, tuple[JobPeers, IncidentBook, JobClock]] = {}
        self._partition: dict[str, int] = {}

    def forget_partitions(self, partitions: set[int]) -> None:
        for job in [j for j, p in self._partition.items() if p in partitions]:
            self.jobs.pop(job, None)
            del self._partition[job]

    async def handle(self, topic: str, partition: int, offset: int, key: Any, value: Any) -> None:
        telemetry.RECEIVED.labels(topic).inc()
        try:
            summaries = decode_summaries(value)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            await self.ctx.dead_letter(topic, partition, offset, key, value, f"bad job summary: {e}")
            return
        for summary in summaries:
            await self._observe(summary, partition)

    async def _observe(self, summary: JobSummary, partition: int) -> None:
        self._partition[summary.job] = partition
        entry = self.jobs.get(summary.job)
        if entry is None:
            book = (self.restore_book(summary.job) if self.restore_book else None) or IncidentBook()
            entry = self.jobs[summary.job] = (JobPeers(self.config, summary.job), book, JobClock())
        peers, book, clock = entry
        before = (len(book.incidents), len(book.firing()))
        changed = False
        for ready in clock.add(summary):
            obs = peers.observe(ready)
            for ev in book.observe(ready.node, ready.ts, obs.conditions, channel="job_peers"):
                changed = True
                await self.ctx.publish_alert(ev)
        if self.save_book is not None and (changed or before != (len(book.incidents), len(book.firing()))):
            self.save_book(summary.job, book)
