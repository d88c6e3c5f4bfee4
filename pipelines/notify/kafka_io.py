"""Kafka in and out: read alert events, commit offsets only once they are safe.

The worker is a single consumer of every partition of the alerts topic
(manual assignment, offsets committed to a consumer group): grouping needs to
see all alerts, and a restart resumes from the last committed offset. An
offset is committed only after the batch it ends is durably stored in the
notification state, and a batch that fails to be stored is read again (the
position is put back to its start), so nothing read is ever forgotten. A
partition with nothing committed starts at ``GPUWATCH_NOTIFY_OFFSET_RESET``
(earliest by default): the worker never calls ``seek_to_committed``, whose
None/0 gap the pipeline works around (pipelines/commit.py).

A message that does not decode is counted, logged and sent to the dead-letter
topic with the reason; it never stops the worker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from kafka_security import aiokafka_kwargs

from pipelines.notify.alert import Alert
from pipelines.notify.metrics import NotifyMetrics
from pipelines.notify.settings import NotifySettings
from schemas.alerts import AlertEvent
from schemas.codec import SchemaError, decode, encode
from schemas.deadletter import DeadLetter
from schemas.topics import ALERTS, DEADLETTER, NOTIFICATIONS, TopicSpec

log = logging.getLogger("gpuwatch.notify.kafka")


def aiokafka_security(settings: NotifySettings) -> dict:
    """aiokafka's security arguments, from the translation every gpuwatch process shares."""
    return aiokafka_kwargs(settings.kafka_client_config())


def ensure_notify_topics(settings: NotifySettings) -> None:
    """Create the worker's topics if missing, with the contract's partitions and retention."""
    from pipelines.topics_admin import ensure_topics

    def partitions(spec: TopicSpec) -> int:  # GPUWATCH_TOPIC_PARTITIONS, as the pipeline creates them
        return settings.topic_spec(spec).partitions

    specs = [TopicSpec(settings.alerts_topic(), partitions(ALERTS), ALERTS.key, ALERTS.purpose, ALERTS.config),
             TopicSpec(settings.history_topic(), partitions(NOTIFICATIONS), NOTIFICATIONS.key,
                       NOTIFICATIONS.purpose, NOTIFICATIONS.config),
             TopicSpec(settings.deadletter_topic(), partitions(DEADLETTER), DEADLETTER.key, DEADLETTER.purpose,
                       DEADLETTER.config)]
    extra = {k: v for k, v in settings.kafka_client_config().items() if k != "bootstrap.servers"}
    ensure_topics(settings.kafka_bootstrap, specs, extra_conf=extra,
                  replication_factor=settings.kafka_replication_factor)


def make_producer(settings: NotifySettings) -> AIOKafkaProducer:
    return AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=20,
                            client_id="gpuwatch-notify", **aiokafka_security(settings))


class AlertConsumer:
    def __init__(self, settings: NotifySettings, ingest: Callable[[list[Alert]], int], metrics: NotifyMetrics,
                 producer: AIOKafkaProducer | None = None) -> None:
        self.settings = settings
        self.ingest = ingest
        self.metrics = metrics
        self.producer = producer
        self.topic = settings.alerts_topic()
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap, group_id=settings.consumer_group(),
            enable_auto_commit=False, auto_offset_reset=settings.notify_offset_reset,
            client_id="gpuwatch-notify", **aiokafka_security(settings))

    async def start(self) -> None:
        await self.consumer.start()
        parts = None
        for _ in range(100):
            parts = self.consumer.partitions_for_topic(self.topic)
            if parts:
                break
            await self.consumer._client.force_metadata_update()  # topic just created
            await asyncio.sleep(0.1)
        if not parts:
            raise RuntimeError(f"alerts topic {self.topic} has no partitions on {self.settings.kafka_bootstrap}")
        tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
        self.consumer.assign(tps)
        for tp in tps:  # resolve the start positions now, so 'ready' means ready
            await self.consumer.position(tp)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batch = await self.consumer.getmany(timeout_ms=200, max_records=1000)
            if not batch:
                continue
            try:
                offsets = self._store(batch)
            except BaseException:
                self._rewind(batch)
                raise
            await self.consumer.commit(offsets)

    def _store(self, batch: dict) -> dict[TopicPartition, int]:
        """Decode and durably store a batch; returns the offsets it makes safe to commit."""
        received = time.time()
        alerts: list[Alert] = []
        offsets: dict[TopicPartition, int] = {}
        for tp, messages in batch.items():
            for m in messages:
                offsets[tp] = m.offset + 1
                self.metrics.events_received.inc()
                try:
                    alerts.append(Alert.from_event(decode(m.value, AlertEvent), received_at=received))
                except SchemaError as e:
                    self._refuse(m, str(e))
        if alerts:
            self.ingest(alerts)  # durable before the commit
        return offsets

    def _rewind(self, batch: dict) -> None:
        """Put the position back to the start of a batch that was not stored, so it is read again.

        The consumer's position has already moved past the batch; without this,
        the worker (which runs :meth:`run` again after an error) would go on from
        there and those alerts would be skipped until a restart, or forever once
        a later batch is committed.
        """
        for tp, messages in batch.items():
            if messages:
                self.consumer.seek(tp, messages[0].offset)

    def _refuse(self, m, reason: str) -> None:
        self.metrics.events_dropped.labels("invalid").inc()
        log.warning("refused alert event at %s[%d]@%d: %s", m.topic, m.partition, m.offset, reason)
        if self.producer is None:
            return
        raw = m.value or b""
        dl = DeadLetter(ts=time.time(), topic=m.topic, partition=m.partition, offset=m.offset,
                        key=(m.key or b"").decode(errors="replace"), reason=reason[:4096], stage="notify",
                        payload_b64=DeadLetter.encode_payload(raw), payload_bytes=len(raw))
        task = asyncio.get_running_loop().create_task(
            self.producer.send(self.settings.deadletter_topic(), value=encode(dl), key=m.key))
        task.add_done_callback(lambda t: t.cancelled() or t.exception() and log.warning(
            "dead letter not published: %s", type(t.exception()).__name__))

    async def stop(self) -> None:
        await self.consumer.stop()
