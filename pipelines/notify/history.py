"""History records for ClickHouse, sent through Kafka to the pipeline's history processor.

The worker never opens ClickHouse (chDB allows one process per data path); it
publishes :class:`schemas.history.HistoryRecord` messages on the notifications
topic. Timestamps are float epoch seconds in columns named ``ts`` or ``*_at``.
Publishing never blocks or fails a notification: a record that cannot be sent
is logged and counted.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from schemas.codec import encode
from schemas.history import HistoryRecord

log = logging.getLogger("gpuwatch.notify.history")

NOTIFICATION_ATTEMPTS = "notification_attempts"
SILENCES = "silences"
ACKS = "alert_acks"


class HistorySink(Protocol):
    def publish(self, table: str, row: dict, key: str = "") -> None: ...


class MemoryHistory:
    """Keeps records in a list: for unit tests and for running without Kafka."""

    def __init__(self) -> None:
        self.records: list[HistoryRecord] = []

    def publish(self, table: str, row: dict, key: str = "") -> None:
        self.records.append(HistoryRecord(table=table, row=row))

    def rows(self, table: str) -> list[dict]:
        return [r.row for r in self.records if r.table == table]


class KafkaHistory:
    """Publishes records with an aiokafka producer, without making the caller wait."""

    def __init__(self, producer, topic: str, metrics=None) -> None:
        self.producer = producer
        self.topic = topic
        self.metrics = metrics
        self._pending: set[asyncio.Task] = set()

    def publish(self, table: str, row: dict, key: str = "") -> None:
        try:
            value = encode(HistoryRecord(table=table, row=row))
        except Exception as e:  # a history record is never worth a failed notification
            self._failed(table, e)
            return
        task = asyncio.get_running_loop().create_task(self._send(table, value, key))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _send(self, table: str, value: bytes, key: str) -> None:
        try:
            await self.producer.send(self.topic, value=value, key=key.encode() if key else None)
        except Exception as e:
            self._failed(table, e)

    async def drain(self) -> None:
        """Wait for queued records to reach the broker (at shutdown)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        await self.producer.flush()

    def _failed(self, table: str, err: BaseException | None) -> None:
        log.warning("history record for %s not published: %s: %s", table, type(err).__name__, err)
        if self.metrics is not None:
            self.metrics.history_errors.inc()
