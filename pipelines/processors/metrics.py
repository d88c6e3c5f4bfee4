"""The metrics processor: validate -> store raw -> aggregate -> rules/detectors -> decide."""

from __future__ import annotations

import logging
from typing import Any, Callable

from pipelines import telemetry
from pipelines.context import PipelineContext
from pipelines.decide import IncidentBook
from pipelines.sinks.tables import ANOMALY_SCORES, FEATURES_1M, METRICS_RAW
from schemas.codec import SchemaError, decode
from schemas.metrics import MetricBatch

log = logging.getLogger("gpuwatch.processor.metrics")


def raw_rows(batch: MetricBatch, partition: int, offset: int) -> list[tuple]:
    node, bts, blabels = batch.node, batch.ts, batch.labels
    return [
        (s.ts if s.ts is not None else bts, node, s.gpu, s.uuid, s.metric, s.value, s.unit,
         {**blabels, **s.labels} if blabels else s.labels, partition, offset)
        for s in batch.samples
    ]


class MetricsProcessor:
    """Everything done to one metric batch.

    ``detectors`` makes (or restores from its checkpoint) the per-node tiered
    detection state, :class:`pipelines.detect.NodeDetectors`; without it only
    threshold rules judge.
    """

    def __init__(self, ctx: PipelineContext, *, restore_book: Callable[[str], IncidentBook | None] | None = None,
                 detectors: Callable[[str], Any] | None = None,
                 send_job_summary: Callable[[Any], Any] | None = None) -> None:
        self.ctx = ctx
        #: Forwards per-job summaries, keyed by job, to the job-peers processor.
        self.send_job_summary = send_job_summary
        self.restore_book = restore_book
        self.make_detectors = detectors
        self.detectors: dict[str, Any] = {}
        #: node of the batch handled last (for checkpointing its detectors)
        self.last_node: str | None = None

    def forget_partition(self, partition: int) -> None:
        """Drop detectors of nodes on a revoked partition; the next owner restores them."""
        for node in [n for n in self.detectors if self.ctx.node_partition.get(n) == partition]:
            del self.detectors[node]

    async def handle(self, topic: str, partition: int, offset: int, key: Any, value: Any) -> None:
        ctx = self.ctx
        telemetry.RECEIVED.labels(topic).inc()
        try:
            batch = decode(value, MetricBatch, max_bytes=ctx.settings.max_message_bytes)
        except SchemaError as e:
            await ctx.dead_letter(topic, partition, offset, key, value, str(e))
            return
        sink = ctx.sink
        ctx.node_partition[batch.node] = partition
        self.last_node = batch.node
        rows = raw_rows(batch, partition, offset)
        ctx.latest_rows[batch.node] = rows  # what a page shows: the peers' readings, values at resolution
        if offset > sink.stored_upto(METRICS_RAW.name, partition):
            sink.add(METRICS_RAW.name, rows, partition=partition, offset=offset)
            telemetry.SAMPLES.inc(len(rows))
        else:
            sink.stats.skipped_replayed += 1
            telemetry.REPLAYED.labels(topic).inc()
        closed = ctx.windows.add(batch.node, batch.ts, ((r[2], r[3], r[4], r[5]) for r in rows),
                                 partition=partition, offset=offset, sample_ts=(r[0] for r in rows))
        if closed:
            sink.add(FEATURES_1M.name, [r.as_tuple() for r in closed])
        conditions = ctx.rules.evaluate(batch.node, ((r[0], r[2], r[3], r[4], r[5], r[7]) for r in rows))
        fresh = True
        if self.make_detectors is not None:
            try:
                nd = self.detectors.get(batch.node)
                if nd is None:
                    nd = self.detectors[batch.node] = self.make_detectors(batch.node)
                obs = nd.observe(batch)
                sink.add(ANOMALY_SCORES.name, obs.scores)
                conditions.extend(obs.conditions)
                fresh = obs.fresh
                if fresh and self.send_job_summary is not None:
                    for summary in obs.job_summaries:
                        await self.send_job_summary(summary)
            except Exception:  # a detector bug must not stop storage or rules
                telemetry.PROCESSOR_ERRORS.labels("detectors").inc()
                log.exception("detectors failed on a batch from %s", batch.node)
        if fresh:  # a batch replayed onto restored detectors was judged before the restart
            await ctx.decide(batch.node, batch.ts, conditions, "metrics", self.restore_book)
        await ctx.sweep(batch.node, batch.ts, "events")
