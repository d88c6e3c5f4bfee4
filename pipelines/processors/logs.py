"""The logs processor: salvage -> mine templates -> critical lines -> log anomalies -> store."""

from __future__ import annotations

import logging
from typing import Any, Callable

from pipelines import telemetry
from pipelines.context import PipelineContext
from pipelines.decide import IncidentBook
from pipelines.logs import LINEAGE_TABLE, TEMPLATE_TABLE, LogProcessor, salvage_log_batch
from pipelines.processors.events import EventsProcessor
from pipelines.sinks.tables import LOGS
from schemas.codec import SchemaError

log = logging.getLogger("gpuwatch.processor.logs")


class LogsProcessor:
    def __init__(self, ctx: PipelineContext, miner: LogProcessor, events: EventsProcessor, *,
                 restore_book: Callable[[str], IncidentBook | None] | None = None) -> None:
        self.ctx = ctx
        self.miner = miner
        self.events = events
        #: Restores a node's checkpointed incident book; without it, a node's first log batch after a
        #: restart would start an empty book and hide the node's open metric and event incidents.
        self.restore_book = restore_book

    async def handle(self, topic: str, partition: int, offset: int, key: Any, value: Any) -> None:
        ctx = self.ctx
        telemetry.RECEIVED.labels(topic).inc()
        try:
            salvaged = salvage_log_batch(value, max_bytes=ctx.settings.max_message_bytes)
        except SchemaError as e:
            await ctx.dead_letter(topic, partition, offset, key, value, str(e))
            return
        if salvaged.rejected:  # the message goes on with its good records; the refused ones are sent aside
            await ctx.dead_letter(topic, partition, offset, key, value,
                                  f"{len(salvaged.rejected)} log records refused: " + "; ".join(salvaged.rejected[:20]),
                                  stage="record", count=len(salvaged.rejected))
            log.warning("%d log records refused in %s[%d]@%d, e.g. %s", len(salvaged.rejected), topic, partition,
                        offset, salvaged.rejected[0])
        if offset <= ctx.sink.stored_upto(LOGS.name, partition):
            ctx.sink.stats.skipped_replayed += 1  # stored before a restart: its counts are in already
            telemetry.REPLAYED.labels(topic).inc()
            return
        out = self.miner.process(salvaged.batch, partition, offset)
        if out.failed:
            await ctx.dead_letter(topic, partition, offset, key, value, out.failed, stage="process")
            return
        if out.line_errors:
            telemetry.ROWS_DROPPED.labels(LOGS.name, "line_error").inc(out.line_errors)
        if out.dropped:  # over the node's rate: counted, critical lines still raise events, one summary row stored
            telemetry.ROWS_DROPPED.labels(LOGS.name, "rate_limited").inc(out.dropped)
        ctx.sink.add(LOGS.name, out.log_rows, partition=partition, offset=offset)
        ctx.sink.add(TEMPLATE_TABLE, out.template_rows, partition=partition, offset=offset)
        if out.lineage_rows:
            ctx.sink.add(LINEAGE_TABLE, out.lineage_rows, partition=partition, offset=offset)
        for ev in out.events:  # validated once, where the pattern matched
            await self.events.record(ev)
        for obs in out.observations:
            await ctx.decide(obs.key, obs.ts, obs.conditions, "logs", self.restore_book)
