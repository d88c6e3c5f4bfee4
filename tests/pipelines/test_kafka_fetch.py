"""The fetch settings of issue 11 reach the aiokafka consumer the pipeline's Faust app creates (no broker)."""

import asyncio
import uuid
import os

from pipelines.app import create_app
from pipelines.settings import PipelineSettings


def test_fetch_settings_reach_the_consumer(tmp_path, bootstrap, chdb_session_dsn):
    # create_app opens the store: in this process only the session's chDB path may be opened
    settings = PipelineSettings(_env_file=None, home=tmp_path, kafka_bootstrap=bootstrap,
                                clickhouse_dsn=chdb_session_dsn, clickhouse_database=f"t_{uuid.uuid4().hex[:12]}",
                                kafka_max_partition_fetch_bytes=65_536, kafka_fetch_max_wait_ms=40,
                                kafka_prefetch_backoff_ms=5)
    app = create_app(settings)

    async def started_fetcher():  # aiokafka binds the consumer to the running loop, as Faust's thread does
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        await consumer.start()
        try:
            return consumer._fetcher
        finally:
            await consumer.stop()

    fetcher = asyncio.run(started_fetcher())
    assert fetcher._max_partition_fetch_bytes == 65_536
    assert fetcher._fetch_max_wait_ms == 40
    assert fetcher._prefetch_backoff == 0.005


def test_a_batch_larger_than_the_fetch_size_is_read_whole(bootstrap, topic_prefix):
    """Producers batch metrics up to ~1 MB, past a 64 KiB per-partition fetch: the consumer must still
    read every message of such a batch, on a partition that is not first in the fetch too."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"{topic_prefix}.fetch-size"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 4, 1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 200, "batch.size": 1_000_000})
    for p in range(4):
        for i in range(20):  # 20 x 20 KB incompressible on each partition: one ~400 KB batch each
            producer.produce(topic, os.urandom(20_000), key=f"{p}-{i}".encode(), partition=p)
    assert producer.flush(30) == 0

    async def read_all() -> dict[int, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, max_partition_fetch_bytes=65_536,
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in range(4)]
            consumer.assign(tps)
            counts = dict.fromkeys(range(4), 0)
            for _ in range(200):
                got = await consumer.getmany(timeout_ms=500)
                for tp, records in got.items():
                    counts[tp.partition] += len(records)
                if all(n >= 20 for n in counts.values()):
                    break
            return counts
        finally:
            await consumer.stop()

    assert asyncio.run(read_all()) == {p: 20 for p in range(4)}


def test_a_worker_catching_up_fetches_large_chunks_and_a_live_one_small(tmp_path, bootstrap, chdb_session_dsn):
    """64 KiB chunks and 50-record polls keep a quiet partition's sample from waiting behind a backlog's
    (issue 11); while the worker only catches up, each fetch round and each poll cost the same Python work
    however little they brought (issue 10)."""
    from pipelines.kafka_fetch import FetchMode, set_fetch_timing

    mode = FetchMode(65_536, 1_048_576, 50, 500)
    settings = PipelineSettings(_env_file=None, home=tmp_path, kafka_bootstrap=bootstrap,
                                clickhouse_dsn=chdb_session_dsn, clickhouse_database=f"t_{uuid.uuid4().hex[:12]}")
    app = create_app(settings)
    set_fetch_timing(app.consumer, 1500, 10, mode)

    async def started_consumer():
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        await consumer.start()
        try:
            read = lambda: (consumer._fetcher._max_partition_fetch_bytes, consumer._max_poll_records)  # noqa: E731
            seen = [read()]
            mode.set_catching_up(True)
            seen.append(read())
            mode.set_catching_up(False)
            seen.append(read())
            return seen
        finally:
            await consumer.stop()

    assert asyncio.run(started_consumer()) == [(65_536, 50), (1_048_576, 500), (65_536, 50)]


def test_the_worker_is_catching_up_while_its_newest_batch_trails_the_clock():
    import time
    from types import SimpleNamespace

    from pipelines.context import PipelineContext

    ctx = PipelineContext.__new__(PipelineContext)  # only the clock logic: no sink, no Kafka
    ctx.settings = SimpleNamespace(flush_backlog_interval_s=5.0)
    ctx.newest_event_ts = None
    assert not ctx.catching_up(), "a worker that has handled nothing is not behind"
    ctx.newest_event_ts = time.time() - 600
    assert ctx.catching_up()
    ctx.newest_event_ts = time.time() - 1
    assert not ctx.catching_up()


def test_the_backlog_interval_is_never_below_the_live_one():
    """It is also the lag that means "catching up": below the live interval, a live worker would be taken
    for one behind and fetch for throughput. A deployment that raised only flush_interval_s keeps working."""
    assert PipelineSettings(_env_file=None, flush_interval_s=10).flush_backlog_interval_s == 10
    assert PipelineSettings(_env_file=None, flush_interval_s=1, flush_backlog_interval_s=0.5).flush_backlog_interval_s == 1
    assert PipelineSettings(_env_file=None).flush_backlog_interval_s == 5
