"""The metrics processor: validate -> store raw -> aggregate -> rules/detectors -> decide.

A batch is decoded once into columns (:mod:`pipelines.transforms.metric_columns`)
and every stage takes those columns: the raw rows go to the sink as an Arrow
insert, the windows and threshold rules work on whole arrays, and no pydantic
model or row tuple is built per sample. Per-sample Python is left only where
the per-node detectors still walk a batch's samples.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from pipelines import telemetry
from pipelines.context import PipelineContext
from pipelines.decide import IncidentBook
from pipelines.sinks.tables import ANOMALY_SCORES, FEATURES_1M, METRICS_RAW
from pipelines.store import first_line
from pipelines.transforms.metric_columns import BatchRows, decode_metric_messages

log = logging.getLogger("gpuwatch.processor.metrics")

#: Job summaries are sent at most this often, one message per job holding every summary since the last
#: send. One message per node per tick was as many Kafka messages as metric batches: each produced,
#: fetched and handed over again (issue 10). The job-peers processor orders them in event time anyway.
JOB_SUMMARY_SEND_S = 0.25
#: At most this many summaries per message (a backlog gathers many in 0.25 s), and per job while sends fail.
JOB_SUMMARIES_PER_MESSAGE, JOB_SUMMARIES_HELD_MAX = 500, 20_000
_DECODE_CPU, _WINDOWS_CPU, _RULES_CPU, _DETECTORS_CPU = (
    telemetry.STAGE_CPU.labels(stage) for stage in ("decode", "windows", "rules", "detectors"))


class MetricsProcessor:
    """Everything done to one metric batch.

    ``detectors`` makes (or restores from its checkpoint) the per-node tiered
    detection state, :class:`pipelines.detect.NodeDetectors`; without it only
    threshold rules judge.
    """

    def __init__(self, ctx: PipelineContext, *, restore_book: Callable[[str], IncidentBook | None] | None = None,
                 detectors: Callable[[str], Any] | None = None,
                 send_job_summary: Callable[[str, list], Any] | None = None) -> None:
        self.ctx = ctx
        #: Forwards a job's summaries, keyed by job, to the job-peers processor: ``send_job_summary(job, summaries)``.
        self.send_job_summary = send_job_summary
        #: job -> summaries not sent yet (sent every JOB_SUMMARY_SEND_S, and by the flush timer when idle)
        self._summaries: dict[str, list] = {}
        self._summaries_sent_at = time.monotonic()
        self.restore_book = restore_book
        self.make_detectors = detectors
        self.detectors: dict[str, Any] = {}
        #: node of the batch handled last (for checkpointing its detectors)
        self.last_node: str | None = None

    async def send_job_summaries(self) -> None:
        """Send every job's summaries not sent yet, one message per job (per 500). Never raises: a job
        whose send fails keeps its summaries for the next send (the newest 20,000 of them)."""
        pending, self._summaries = self._summaries, {}
        self._summaries_sent_at = time.monotonic()
        if self.send_job_summary is None:
            return
        for job, summaries in pending.items():
            for i in range(0, len(summaries), JOB_SUMMARIES_PER_MESSAGE):
                try:
                    await self.send_job_summary(job, summaries[i:i + JOB_SUMMARIES_PER_MESSAGE])
                except Exception as e:  # the producer: keep them, and never stop the processor or the flush
                    telemetry.PROCESSOR_ERRORS.labels("job_summaries").inc()
                    log.warning("job summaries of %s not sent (%s); kept for the next send", job, first_line(e, 200))
                    held = summaries[i:] + self._summaries.get(job, [])
                    self._summaries[job] = held[-JOB_SUMMARIES_HELD_MAX:]
                    break

    def forget_partition(self, partition: int) -> None:
        """Drop detectors of nodes on a revoked partition; the next owner restores them."""
        for node in [n for n in self.detectors if self.ctx.node_partition.get(n) == partition]:
            del self.detectors[node]

    async def handle(self, topic: str, partition: int, offset: int, key: Any, value: Any) -> None:
        ctx = self.ctx
        telemetry.RECEIVED.labels(topic).inc()
        cpu = time.thread_time
        t0 = cpu()
        cols, rejected = decode_metric_messages([(value, partition, offset)],
                                                max_bytes=ctx.settings.max_message_bytes)
        t1 = cpu()
        _DECODE_CPU.inc(t1 - t0)
        if rejected:
            await ctx.dead_letter(topic, partition, offset, key, value, rejected[0].reason)
            return
        sink = ctx.sink
        node, ts = cols.batch_node[0], float(cols.batch_ts[0])
        ctx.node_partition[node] = partition
        if ctx.newest_event_ts is None or ts > ctx.newest_event_ts:
            ctx.newest_event_ts = ts
        self.last_node = node
        ctx.latest_rows[node] = BatchRows(cols)  # what a page shows: the peers' readings, values at resolution
        if offset > sink.stored_upto(METRICS_RAW.name, partition):
            sink.add_columns(METRICS_RAW.name, cols, partition=partition, offset=offset, event_ts=ts)
            telemetry.SAMPLES.inc(len(cols))
        else:
            sink.stats.skipped_replayed += 1
            telemetry.REPLAYED.labels(topic).inc()
        t0 = cpu()
        closed = ctx.windows.add(cols)
        if closed:
            sink.add(FEATURES_1M.name, [r.as_tuple() for r in closed])
        t1 = cpu()
        conditions = ctx.rules.evaluate_columns(node, cols.ts, cols.gpu, cols.uuid, cols.metric, cols.value,
                                                cols.labels)
        t2 = cpu()
        _WINDOWS_CPU.inc(t1 - t0)
        _RULES_CPU.inc(t2 - t1)
        fresh = True
        if self.make_detectors is not None:
            try:
                nd = self.detectors.get(node)
                if nd is None:
                    nd = self.detectors[node] = self.make_detectors(node)
                # each sample's own labels: batch-level ones, merged into the stored rows, are not its own
                t0 = cpu()
                obs = nd.observe_columns(node, ts, cols.gpu, cols.metric, cols.value.tolist(),
                                         cols.own_labels.get(0, cols.labels))
                _DETECTORS_CPU.inc(cpu() - t0)
                sink.add(ANOMALY_SCORES.name, obs.scores)
                conditions.extend(obs.conditions)
                fresh = obs.fresh
                if fresh and self.send_job_summary is not None:
                    for summary in obs.job_summaries:
                        self._summaries.setdefault(summary.job, []).append(summary)
                    if self._summaries and time.monotonic() - self._summaries_sent_at >= JOB_SUMMARY_SEND_S:
                        await self.send_job_summaries()
            except Exception:  # a detector bug must not stop storage or rules
                telemetry.PROCESSOR_ERRORS.labels("detectors").inc()
                log.exception("detectors failed on a batch from %s", node)
        if fresh:  # a batch replayed onto restored detectors was judged before the restart
            await ctx.decide(node, ts, conditions, "metrics", self.restore_book)
        await ctx.sweep(node, ts, "events")
