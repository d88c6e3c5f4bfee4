"""The gpuwatch pipeline on one page: topics in, processors, sinks out. No logic here.

    metrics    -> MetricsProcessor    -> metrics_raw, features_1m, anomaly_scores  \\
    events     -> EventsProcessor     -> node_events                                \\
    logs       -> LogsProcessor       -> logs, log_templates (+ events)              >-> incidents -> alerts topic
    heartbeats -> HeartbeatsProcessor -> heartbeats (+ absence timer)               /        + alerts table
    (job summaries, re-keyed by job) -> JobPeersProcessor: a node slower than its job
    notifications -> HistoryProcessor -> notify history tables
    bad input of any topic -> dead-letter topic, with the reason

Every processor consumes with acks off; the flush timer stores the sink's
batch and only then acks what it made durable (pipelines/commit.py). Incident
books and detector state are checkpointed in changelog-backed Faust tables, so
a restarted worker resumes trained and does not alert twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust

from pipelines import health, telemetry, web
from pipelines.checkpoints import AbsenceCheckpoints, Checkpoints, freeze, thaw
from pipelines.commit import AckLedger, replay_uncommitted_from_start
from pipelines.context import PipelineContext, flush_wanted
from pipelines.decide import IncidentBook
from pipelines.eager_dispatch import dispatch_eagerly
from pipelines.kafka_auth import faust_credentials
from pipelines.kafka_fetch import FetchMode, set_fetch_timing
from pipelines.kafka_reachability import Reachability, connected_brokers
from pipelines.detect import new_node_detectors
from pipelines.detect.config import DetectionConfig
from pipelines.detect.node_absence import NodeAbsence
from pipelines.logs import (LINEAGE_COLUMNS, LINEAGE_TABLE, TEMPLATE_COLUMNS, TEMPLATE_TABLE, LogExplainer,
                            LogProcessor, fleet_templates)
from pipelines.processors.events import EventsProcessor
from pipelines.processors.fair_buffer import PartitionFairTopic
from pipelines.processors.heartbeats import HeartbeatsProcessor
from pipelines.processors.job_peers import JobPeersProcessor, encode_summaries
from pipelines.processors.history import HistoryProcessor
from pipelines.processors.logs import LogsProcessor
from pipelines.processors.loop import processor_loop
from pipelines.processors.metrics import MetricsProcessor
from pipelines.settings import PipelineSettings
from pipelines.sinks.clickhouse import ClickHouseSink
from pipelines.sinks.tables import TableSpec
from pipelines.store import ChdbOwner, Store, chdb_path, is_chdb
from pipelines.transforms.aggregate_columns import ColumnarWindows
from pipelines.transforms.rules import RuleSet
from pipelines.worker_gc import GC_PAUSES, freeze_survivors, full_collection
from schemas.topics import ALERTS, DEADLETTER, EVENTS, HEARTBEATS, LOGS, METRICS, NOTIFICATIONS

log = logging.getLogger("gpuwatch.pipeline")


def create_app(settings: PipelineSettings) -> faust.App:
    store = Store(settings.dsn(), settings.clickhouse_database, settings.clickhouse_cluster)
    partitions = lambda spec: settings.topic_spec(spec).partitions  # noqa: E731 - configured per topic
    node_partitions = partitions(METRICS)
    store.apply_schema()
    app = faust.App(
        settings.app_id, broker=f"kafka://{settings.kafka_bootstrap}", store="memory://",
        datadir=str(settings.home / "faust"), key_serializer="raw", value_serializer="raw",
        broker_credentials=faust_credentials(settings.kafka_client_config()),
        topic_replication_factor=settings.kafka_replication_factor, topic_partitions=node_partitions,
        broker_commit_interval=1.0, broker_session_timeout=settings.kafka_session_timeout_s,
        broker_heartbeat_interval=max(1.0, settings.kafka_session_timeout_s / 5),
        stream_wait_empty=False, web_host=settings.web_host, web_port=settings.web_port, web_bind=settings.web_host,
        consumer_auto_offset_reset="earliest", producer_acks=-1, producer_max_request_size=4_000_000,
        broker_max_poll_records=settings.max_poll_records,
        consumer_max_fetch_size=settings.kafka_max_partition_fetch_bytes,
        logging_config=None,
    )
    topic = settings.topic
    metrics_t = PartitionFairTopic(app, topics=[topic(METRICS.name)], partitions=partitions(METRICS),
                                   maxsize=settings.metrics_stream_buffer, per_partition=settings.metrics_partition_buffer)
    events_t = app.topic(topic(EVENTS.name), partitions=partitions(EVENTS))
    logs_t = app.topic(topic(LOGS.name), partitions=partitions(LOGS))
    heartbeats_t = app.topic(topic(HEARTBEATS.name), partitions=partitions(HEARTBEATS))
    history_t = app.topic(topic(NOTIFICATIONS.name), partitions=partitions(NOTIFICATIONS))
    alerts_t = app.topic(topic(ALERTS.name), partitions=partitions(ALERTS), internal=False)
    dlq_t = app.topic(topic(DEADLETTER.name), partitions=partitions(DEADLETTER), internal=False)
    # Per-job node summaries, re-keyed by job so one processor sees every node of a job.
    job_summaries_t = app.topic(f"{settings.app_id}-job-summaries", partitions=node_partitions, internal=True)
    # Checkpoints: zlib'd pickles keyed by node, co-partitioned with the node-keyed topics.
    incidents = app.Table("incidents", partitions=node_partitions, key_type=str, value_type=bytes)
    detector_state = app.Table("detectors", partitions=node_partitions, key_type=str, value_type=bytes)
    job_books = app.Table("job-incidents", partitions=node_partitions, key_type=str, value_type=bytes)
    absence_state = app.Table("absence", partitions=node_partitions, key_type=str, value_type=bytes)

    async def send_alert(key: bytes, value: bytes) -> Any:
        return await alerts_t.send(key=key, value=value)

    async def send_dead_letter(key: bytes, value: bytes) -> Any:
        return await dlq_t.send(key=key, value=value)

    sink = ClickHouseSink(store, max_rows=settings.flush_max_rows, max_age_s=settings.flush_interval_s,
                          backlog_max_age_s=settings.flush_backlog_interval_s,
                          max_buffered_rows=settings.max_buffered_rows, retry_max_s=settings.insert_retry_max_s)
    sink.register(TableSpec(TEMPLATE_TABLE, TEMPLATE_COLUMNS, millis=("first_seen", "last_seen")))
    sink.register(TableSpec(LINEAGE_TABLE, LINEAGE_COLUMNS, millis=("changed_at",)))
    ctx = PipelineContext(
        settings=settings, sink=sink,
        windows=ColumnarWindows(settings.window_s, settings.window_grace_s, settings.window_idle_close_s,
                                written_upto=sink.last_window),
        rules=RuleSet.from_file(settings.rules_file, database=settings.clickhouse_database),
        ledger=AckLedger(_ack), send_alert=send_alert, send_dead_letter=send_dead_letter,
        metrics_topic=metrics_t.get_topic_name(), explainer=LogExplainer(store),
    )
    sink.on_rejected = ctx.dead_letter_row
    reachability = Reachability()
    ctx.health = lambda: health.report(ctx, settings.max_consumer_lag,
                                       lambda: health.consumer_lag(app.consumer, ctx.read_offsets),
                                       lambda: reachability.unreachable_for(time.monotonic()),
                                       settings.kafka_unreachable_after_s)
    detection = DetectionConfig.from_yaml(settings.detection_file) if settings.detection_file else DetectionConfig.default()

    def restore_book(node: str) -> IncidentBook | None:
        return thaw(incidents.get(node))

    def detectors_for(node: str) -> Any:
        return thaw(detector_state.get(node)) or new_node_detectors(detection, node)

    miner = LogProcessor(settings.home / "logminer", worker=settings.app_id)
    absence = NodeAbsence(detection)
    absence_checkpoints = AbsenceCheckpoints(absence_state, absence)
    async def send_job_summary(job: str, summaries: list) -> None:
        await job_summaries_t.send(key=job.encode(), value=encode_summaries(summaries))

    def save_job_book(job: str, book: IncidentBook) -> None:
        job_books[job] = freeze(book)

    job_peers_p = JobPeersProcessor(ctx, detection, restore_book=lambda job: thaw(job_books.get(job)),
                                    save_book=save_job_book)
    metrics_p = MetricsProcessor(ctx, restore_book=restore_book, detectors=detectors_for,
                                 send_job_summary=send_job_summary)
    events_p = EventsProcessor(ctx, restore_book=restore_book)
    processors = {
        metrics_t: metrics_p,
        events_t: events_p,
        logs_t: LogsProcessor(ctx, miner, events_p, restore_book=restore_book),
        heartbeats_t: HeartbeatsProcessor(ctx, on_heartbeat=lambda hb, partition: absence_checkpoints.heartbeat(
            hb.node, hb.ts, hb.interval_s, partition)),
        history_t: HistoryProcessor(ctx),
        job_summaries_t: job_peers_p,
    }
    checkpoints = Checkpoints(incidents, detector_state, metrics_p, ctx, settings.checkpoint_interval_s)
    for source, processor in processors.items():
        app.agent(source, name=f"process-{source.get_topic_name()}")(
            processor_loop(ctx, processor, checkpoints if source in (metrics_t, events_t) else None,
                           flush_when_due=source not in (events_t, heartbeats_t),
                           backpressure=source not in (events_t, heartbeats_t)))
    replay_uncommitted_from_start(app.consumer, {source.get_topic_name() for source in processors})
    fetch_mode = FetchMode(settings.kafka_max_partition_fetch_bytes, settings.kafka_backlog_partition_fetch_bytes,
                           settings.max_poll_records, settings.backlog_max_poll_records)
    set_fetch_timing(app.consumer, settings.kafka_fetch_max_wait_ms, settings.kafka_prefetch_backoff_ms, fetch_mode)
    dispatch_eagerly(app.consumer)

    @app.timer(settings.flush_interval_s / 2)
    async def flush_due() -> None:
        catching_up = ctx.catching_up()
        fetch_mode.set_catching_up(catching_up)
        telemetry.CATCHING_UP.set(int(catching_up))
        if flush_wanted(ctx.sink, ctx.ledger):
            await ctx.flush()
        await metrics_p.send_job_summaries()  # what a quiet worker still holds (never raises)

    gc_pauses = GC_PAUSES.install()

    @app.timer(settings.gc_freeze_interval_s or 5.0)
    async def gc_upkeep() -> None:  # slow pauses are logged whether or not survivors are frozen
        if settings.gc_freeze_interval_s:
            freeze_survivors()
        gc_pauses.report_slow()

    if settings.gc_full_interval_s:
        @app.timer(settings.gc_full_interval_s)
        async def collect_frozen() -> None:
            t0 = time.perf_counter()
            freed = full_collection()
            log.info("full garbage collection: %d objects freed in %.0f ms", freed, (time.perf_counter() - t0) * 1000)

    @app.timer(2.0)
    async def kafka_connections() -> None:  # /healthz: a worker with no broker for long is not healthy
        if reachability.observe(connected_brokers(app), time.monotonic()):
            log.warning("cannot see the Kafka clients' connections for a minute (aiokafka changed?): "
                        "/healthz will not report a lost broker")

    @app.timer(5.0)
    async def silent_nodes() -> None:
        now = max(absence.now(), time.time() - settings.absence_lateness_s)
        found = absence.check(now)
        for node in absence.nodes():
            await ctx.decide(node, now, [c for c in found.conditions if c.node == node], "absence", restore_book)

    @app.on_rebalance_complete.connect
    async def on_assigned(sender: Any, **_: Any) -> None:  # tables are recovered by now
        absence_checkpoints.restore({tp.partition for tp in app.consumer.assignment()
                                     if tp.topic == heartbeats_t.get_topic_name()}, time.time())

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, revoked: set, **_: Any) -> None:
        await ctx.flush()
        for tp in revoked:
            if tp.topic == ctx.metrics_topic:
                metrics_p.forget_partition(tp.partition)
        for node in ctx.forget_partitions({(tp.topic, tp.partition) for tp in revoked}):
            absence.forget(node)
        job_peers_p.forget_partitions({tp.partition for tp in revoked if tp.topic == job_summaries_t.get_topic_name()})

    owner = ChdbOwner(chdb_path(settings.dsn())) if is_chdb(settings.dsn()) and chdb_path(settings.dsn()) else None

    @app.task
    async def announce() -> None:
        loop = asyncio.get_running_loop()
        try:
            miner.learn_fleet_templates(await loop.run_in_executor(None, fleet_templates, store))
        except Exception:  # an empty or unreachable store only means no seeding
            log.warning("could not seed log templates from the store", exc_info=True)
        if owner is not None:
            owner.claim(f"http://{settings.web_host}:{app.conf.web_port}")
        print(f"pipeline: ready (web http://{settings.web_host}:{app.conf.web_port})", flush=True)

    @app.on_before_shutdown.connect
    async def on_shutdown(sender: Any, **_: Any) -> None:
        try:
            await asyncio.wait_for(metrics_p.send_job_summaries(), timeout=5)
            await asyncio.wait_for(ctx.flush(), timeout=20)
        finally:
            miner.close()
            if owner is not None:
                owner.release()

    web.install(app, ctx, store)
    app.gpuwatch = ctx  # for tests and the web views
    return app


async def _ack(event: Any) -> None:
    event.ack()
