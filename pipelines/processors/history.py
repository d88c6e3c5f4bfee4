"""History records from other workers (the notifier): stored in the table they name."""

from __future__ import annotations

from typing import Any

from pipelines import telemetry
from pipelines.context import PipelineContext
from pipelines.sinks.tables import history_spec
from schemas.codec import SchemaError, decode
from schemas.history import HISTORY_TABLES, HistoryRecord


class HistoryProcessor:
    def __init__(self, ctx: PipelineContext) -> None:
        self.ctx = ctx
        for table, columns in HISTORY_TABLES.items():
            ctx.sink.register(history_spec(table, columns))

    async def handle(self, topic: str, partition: int, offset: int, key: Any, value: Any) -> None:
        telemetry.RECEIVED.labels(topic).inc()
        try:
            rec = decode(value, HistoryRecord, max_bytes=self.ctx.settings.max_message_bytes)
            columns = HISTORY_TABLES[rec.table]
            missing = [c for c in columns if c not in rec.row]
            if missing:
                raise SchemaError(f"history row for {rec.table} lacks columns {missing}")
        except SchemaError as e:
            await self.ctx.dead_letter(topic, partition, offset, key, value, str(e))
            return
        self.ctx.sink.add(rec.table, [tuple(rec.row[c] for c in columns)], partition=partition, offset=offset)
