"""Resume points on real chDB: a small table says where each partition's stored rows end (issue 10)."""

from __future__ import annotations

import asyncio
import time

from pipelines.sinks.clickhouse import ClickHouseSink
from pipelines.sinks.resume_points import ResumePoints

NOW = time.time() - 3600


def raw_row(offset: int, partition: int) -> tuple:
    return (NOW + offset, "n1", 0, "GPU-0", "temp", 1.0, "C", {}, partition, offset)


def store_offsets(sink: ClickHouseSink, partition: int, offsets: range) -> None:
    for off in offsets:
        sink.add("metrics_raw", [raw_row(off, partition)], partition=partition, offset=off)
    assert asyncio.run(sink.flush()).stored_all


def points(store) -> list[tuple]:
    return store.query(f"SELECT source_table, partition, max(src_offset) FROM {store.database}.resume_points "
                       "GROUP BY source_table, partition ORDER BY partition").rows


def test_each_insert_records_where_its_partitions_end(store):
    sink = ClickHouseSink(store)
    store_offsets(sink, 1, range(0, 5))
    store_offsets(sink, 4, range(10, 12))
    store_offsets(sink, 1, range(5, 7))
    assert points(store) == [("metrics_raw", 1, 6), ("metrics_raw", 4, 11)]


def test_a_replay_resumes_after_the_stored_rows_even_once_they_expired(store):
    store_offsets(ClickHouseSink(store), 2, range(0, 8))
    # TTL (30 days) or an operator dropped old raw rows: the scan of the raw table found nothing
    # and a replay of the partition stored them all again
    store.command(f"TRUNCATE TABLE {store.database}.metrics_raw")
    assert ClickHouseSink(store).stored_upto("metrics_raw", 2) == 7


def test_a_point_that_lags_the_stored_rows_is_completed_from_the_rows_above_it(store):
    sink = ClickHouseSink(store)
    store_offsets(sink, 3, range(0, 4))
    # a crash between an insert and its point: rows up to 9 stored, the point still says 3
    conv = sink.specs["metrics_raw"].converter()
    store.insert("metrics_raw", [conv(raw_row(off, 3)) for off in range(4, 10)], sink.specs["metrics_raw"].columns)
    assert points(store) == [("metrics_raw", 3, 3)]
    assert ClickHouseSink(store).stored_upto("metrics_raw", 3) == 9


def test_a_partition_never_written_resumes_from_the_start(store):
    assert ResumePoints(store).stored_upto("metrics_raw", ("src_partition", "src_offset"), 5) == -1


def test_a_point_that_fails_to_land_leaves_the_rows_stored_and_acked(store, caplog):
    sink = ClickHouseSink(store)

    def refuse(table, ranges):
        raise RuntimeError("resume_points is read-only today")

    sink._resume.record = refuse
    store_offsets(sink, 0, range(0, 3))  # asserts the flush stored everything
    assert "resume point for metrics_raw not recorded" in caplog.text
    assert ClickHouseSink(store).stored_upto("metrics_raw", 0) == 2  # from the rows themselves


def test_logs_record_their_points_too(store):
    sink = ClickHouseSink(store)
    row = (NOW, "n1", "syslog", "info", "hello", 1, {}, 0, 41, "", "", "")
    sink.add("logs", [row], partition=0, offset=41)
    assert asyncio.run(sink.flush()).stored_all
    assert ("logs", 0, 41) in points(store)


def test_a_buffer_sealed_as_two_batches_gives_its_point_to_the_last_one(store):
    """Rows and column parts of one table are two inserts: the first must not vouch for the second's rows."""
    from pipelines.transforms.metric_columns import decode_metric_messages
    import orjson

    sink = ClickHouseSink(store)
    sink.add("metrics_raw", [raw_row(1, 0)], partition=0, offset=1)
    msg = orjson.dumps({"node": "n1", "ts": NOW + 2, "samples": [{"gpu": 0, "metric": "temp", "value": 1.0}]})
    cols, _ = decode_metric_messages([(msg, 0, 2)])
    sink.add_columns("metrics_raw", cols, partition=0, offset=2)
    sink._seal()
    rows_batch, arrow_batch = sink._queue
    assert rows_batch.ranges == {} and arrow_batch.ranges == {0: [1, 2]}
