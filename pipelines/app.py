"""The gpuwatch pipeline on one page: topics in, processors, sinks out. No logic here.

    metrics  --> MetricsProcessor  --> metrics_raw, features_1m, anomaly_scores
    events   --> EventsProcessor   --> node_events           \\
    heartbeats -> HeartbeatsProcessor -> heartbeats           >-> incidents -> alerts topic + alerts table
    notifications -> HistoryProcessor -> notify history tables
    bad input of any topic --> dead-letter topic, with the reason

Every processor consumes with acks off; the flush timer stores the sink's
batch and only then acks what it made durable (pipelines/commit.py).
"""

from __future__ import annotations

import asyncio
import logging
import pickle
from typing import Any

import faust

from pipelines import web
from pipelines.commit import AckLedger
from pipelines.context import PipelineContext
from pipelines.decide import IncidentBook
from pipelines.processors.events import EventsProcessor
from pipelines.processors.heartbeats import HeartbeatsProcessor
from pipelines.processors.history import HistoryProcessor
from pipelines.processors.metrics import MetricsProcessor
from pipelines.settings import PipelineSettings
from pipelines.sinks.clickhouse import ClickHouseSink
from pipelines.store import ChdbOwner, Store, chdb_path, is_chdb
from pipelines.transforms.aggregate import TumblingWindows
from pipelines.transforms.rules import RuleSet
from schemas.topics import ALERTS, DEADLETTER, EVENTS, HEARTBEATS, METRICS, NOTIFICATIONS

log = logging.getLogger("gpuwatch.pipeline")


def create_app(settings: PipelineSettings) -> faust.App:
    store = Store(settings.dsn(), settings.clickhouse_database)
    store.apply_schema()
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        datadir=str(settings.home / "faust"),
        key_serializer="raw",
        value_serializer="raw",
        topic_replication_factor=1,
        topic_partitions=METRICS.partitions,
        broker_commit_interval=1.0,
        stream_wait_empty=False,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        logging_config=None,
    )
    topic = settings.topic
    metrics_t = app.topic(topic(METRICS.name), partitions=METRICS.partitions)
    events_t = app.topic(topic(EVENTS.name), partitions=EVENTS.partitions)
    heartbeats_t = app.topic(topic(HEARTBEATS.name), partitions=HEARTBEATS.partitions)
    history_t = app.topic(topic(NOTIFICATIONS.name), partitions=NOTIFICATIONS.partitions)
    alerts_t = app.topic(topic(ALERTS.name), partitions=ALERTS.partitions, internal=False)
    dlq_t = app.topic(topic(DEADLETTER.name), partitions=DEADLETTER.partitions, internal=False)
    # Values are pickled IncidentBooks (bytes), so the table needs no codec of its own.
    incidents = app.Table("incidents", partitions=METRICS.partitions, key_type=str, value_type=bytes)

    async def send_alert(key: bytes, value: bytes) -> Any:
        return await alerts_t.send(key=key, value=value)

    async def send_dead_letter(key: bytes, value: bytes) -> Any:
        return await dlq_t.send(key=key, value=value)

    sink = ClickHouseSink(store, max_rows=settings.flush_max_rows, max_age_s=settings.flush_interval_s,
                          max_buffered_rows=settings.max_buffered_rows)
    ctx = PipelineContext(
        settings=settings, sink=sink,
        windows=TumblingWindows(settings.window_s, settings.window_grace_s, settings.window_idle_close_s,
                                written_upto=sink.last_window),
        rules=RuleSet.from_file(settings.rules_file, database=settings.clickhouse_database),
        ledger=AckLedger(_ack),
        send_alert=send_alert, send_dead_letter=send_dead_letter, metrics_topic=metrics_t.get_topic_name(),
    )

    def restore_book(node: str) -> IncidentBook | None:
        raw = incidents.get(node)
        return pickle.loads(raw) if raw else None

    processors = {
        metrics_t: MetricsProcessor(ctx, restore_book=restore_book),
        events_t: EventsProcessor(ctx, restore_book=restore_book),
        heartbeats_t: HeartbeatsProcessor(ctx),
        history_t: HistoryProcessor(ctx),
    }
    for source, processor in processors.items():
        app.agent(source, name=f"process-{source.get_topic_name()}")(
            _processor_loop(ctx, processor, incidents, co_partitioned=source in (metrics_t, events_t)))

    @app.timer(settings.flush_interval_s / 2)
    async def flush_due() -> None:
        if ctx.sink.due() or ctx.ledger.pending():
            await ctx.flush()

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, revoked: set, **_: Any) -> None:
        await ctx.flush()
        ctx.sink.forget_partitions([tp.partition for tp in revoked if tp.topic == ctx.metrics_topic])
        ctx.ledger.drop_partitions({(tp.topic, tp.partition) for tp in revoked})
        for tp in revoked:
            if tp.topic == ctx.metrics_topic:
                ctx.windows.forget_partition(tp.partition)

    owner = ChdbOwner(chdb_path(settings.dsn())) if is_chdb(settings.dsn()) and chdb_path(settings.dsn()) else None

    @app.task
    async def announce() -> None:
        if owner is not None:
            owner.claim(f"http://{settings.web_host}:{app.conf.web_port}")
        print(f"pipeline: ready (web http://{settings.web_host}:{app.conf.web_port})", flush=True)

    @app.on_before_shutdown.connect
    async def on_shutdown(sender: Any, **_: Any) -> None:
        try:
            await asyncio.wait_for(ctx.flush(), timeout=20)
        finally:
            if owner is not None:
                owner.release()

    web.install(app, ctx, store)
    app.gpuwatch = ctx  # for tests and the web views
    return app


async def _ack(event: Any) -> None:
    event.ack()


def _processor_loop(ctx: PipelineContext, processor: Any, incidents: Any, co_partitioned: bool):
    async def loop(stream: faust.StreamT) -> None:
        async for event in stream.noack().events():
            msg = event.message
            try:
                await processor.handle(msg.topic, msg.partition, msg.offset, event.key, event.value)
            except Exception as e:  # never let one message kill the processor
                log.exception("processor failed on %s[%d]@%d", msg.topic, msg.partition, msg.offset)
                await ctx.dead_letter(msg.topic, msg.partition, msg.offset, event.key, event.value,
                                      f"processing error: {type(e).__name__}: {e}", stage="process")
            if co_partitioned and ctx.dirty_books:
                # A table write goes to the changelog partition of the event at hand, so
                # write only the books of nodes that live on this partition.
                for node in [n for n in ctx.dirty_books if ctx.node_partition.get(n) == msg.partition]:
                    incidents[node] = pickle.dumps(ctx.books[node], protocol=pickle.HIGHEST_PROTOCOL)
                    ctx.dirty_books.discard(node)
            ctx.ledger.hold(msg.topic, msg.partition, msg.offset, event)
            if ctx.sink.due():
                await ctx.flush()
            if ctx.sink.overloaded():
                await ctx.backpressure()
    return loop
