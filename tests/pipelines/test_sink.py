"""The ClickHouse sink on real chDB: batches, idempotent retries, resume points, bad rows set aside."""

from __future__ import annotations

import asyncio

import time

from pipelines.commit import AckLedger
from pipelines.sinks.clickhouse import ClickHouseSink, FlushResult
from pipelines.store import ReadOnlyViolation


NOW = time.time() - 3600


def raw_row(ts: float, offset: int, value: float = 1.0, partition: int = 0) -> tuple:
    return (ts, "n1", 0, "GPU-0", "temp", value, "C", {}, partition, offset)


def count(store, table="metrics_raw") -> int:
    return store.query(f"SELECT count() FROM {store.database}.{table}").rows[0][0]


def test_a_retried_batch_with_the_same_source_range_is_stored_once(store):
    sink = ClickHouseSink(store)
    rows = [raw_row(NOW + i, 10) for i in range(100)]
    token = sink.dedup_token("metrics_raw", {0: [10, 10]}, len(rows))
    columns = sink.specs["metrics_raw"].columns
    conv = sink.specs["metrics_raw"].converter()
    store.insert("metrics_raw", [conv(r) for r in rows], columns, token)
    store.insert("metrics_raw", [conv(r) for r in rows], columns, token)  # the "retry"
    assert count(store) == 100


def test_flush_writes_every_table_and_remembers_what_is_stored(store):
    sink = ClickHouseSink(store)
    for off in range(5):
        sink.add("metrics_raw", [raw_row(NOW + off, off, partition=2)], partition=2, offset=off)
    assert sink.buffered_rows() == 5
    assert asyncio.run(sink.flush()).written == 5
    assert count(store) == 5 and sink.buffered_rows() == 0
    fresh = ClickHouseSink(store)  # a restarted worker reads the resume point back
    assert (fresh.stored_upto("metrics_raw", 2), fresh.stored_upto("metrics_raw", 3)) == (4, -1)


def test_rows_the_driver_cannot_encode_are_set_aside_and_the_rest_stored(store):
    rejected = []
    sink = ClickHouseSink(store, on_rejected=lambda table, row, reason: rejected.append(row))
    sink.add("metrics_raw", [raw_row(NOW, 1), raw_row(1_700_000_001.0, 2, value="oops")],
             partition=0, offset=2)
    asyncio.run(sink.flush())
    assert count(store) == 1 and len(rejected) == 1


def test_overload_is_reported_so_processors_stop_consuming(store):
    sink = ClickHouseSink(store, max_buffered_rows=3)
    sink.add("metrics_raw", [raw_row(NOW + i, i) for i in range(3)], partition=0, offset=2)
    assert sink.overloaded()
    asyncio.run(sink.flush())
    assert not sink.overloaded()


def test_ledger_acks_only_flushed_events_below_the_window_floor():
    acked = []

    async def ack(event):
        acked.append(event)

    ledger = AckLedger(ack)
    for off in range(5):
        ledger.hold("m", 0, off, f"e{off}")
    mark = ledger.mark()
    ledger.hold("m", 0, 5, "e5")  # arrived after the flush started: not covered
    asyncio.run(ledger.release(mark, lambda topic, part: 3))
    assert acked == ["e0", "e1", "e2"]
    asyncio.run(ledger.release(ledger.mark(), lambda topic, part: None))
    assert acked == ["e0", "e1", "e2", "e3", "e4", "e5"]


def test_the_query_path_is_read_only(store):
    import pytest

    with pytest.raises(ReadOnlyViolation):
        store.query(f"DROP TABLE {store.database}.metrics_raw")
    with pytest.raises(ReadOnlyViolation):
        store.query("SELECT 1; DROP TABLE x")
    assert store.query("SELECT 'a;b' AS s").rows == [("a;b",)]


def log_row(ts: float, offset: int, message: str = "step 1 loss 2.5", template: int = 7) -> tuple:
    return (ts, "n1", "/var/log/train.log", "info", message, template, {"job": "j1"}, 0, offset, "h1", "trainer",
            "2026-01-01T00:00:00")


def test_log_rows_go_in_as_columns_and_read_back_as_they_were_sent(store):
    """The logs table is buffered and inserted column-oriented; what is stored is what a row insert stored."""
    sink = ClickHouseSink(store)
    sent = [log_row(NOW + (off * 4 + i) / 100, off, f"line {i}", template=i % 3) for off in range(3) for i in range(4)]
    for off in range(3):
        sink.add("logs", sent[off * 4:(off + 1) * 4], partition=0, offset=off)
    assert sink.buffered_rows() == 12
    assert asyncio.run(sink.flush()) == FlushResult(12, True)
    got = store.query(f"SELECT toUnixTimestamp64Milli(ts), node, source, level, message, template_id, labels, "
                      f"src_partition, src_offset, host, component, logged_at FROM {store.database}.logs ORDER BY ts").rows
    assert [tuple(r) for r in got] == [(round(r[0] * 1000), *r[1:]) for r in sent]
    assert ClickHouseSink(store).stored_upto("logs", 0) == 2


def test_a_log_row_the_driver_cannot_encode_is_set_aside_and_the_rest_stored(store):
    rejected = []
    sink = ClickHouseSink(store, on_rejected=lambda table, row, reason: rejected.append(row))
    sink.add("logs", [log_row(NOW, 1), log_row(NOW + 1, 1, template="not a number"), log_row(NOW + 2, 1)],
             partition=0, offset=1)
    asyncio.run(sink.flush())
    assert count(store, "logs") == 2
    assert [r[5] for r in rejected] == ["not a number"]


def test_rows_of_a_backlog_wait_for_the_longer_insert_interval_and_live_rows_do_not(store, monkeypatch):
    """Catching up, nobody waits on the newest row at the 1 s scale: each insert is a part, and a part merged
    again and again (chDB's merges were 14 of a worker's 89 CPU-s on a backlog). Live rows still go in at 1 s."""
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    sink = ClickHouseSink(store, max_age_s=1.0, backlog_max_age_s=5.0)
    old = time.time() - 600
    sink.add("metrics_raw", [raw_row(old, 0)], partition=0, offset=0, event_ts=old)
    clock[0] += 1.5
    assert not sink.due(), "a backlog's rows were flushed at the live interval"
    clock[0] += 4.0
    assert sink.due()
    asyncio.run(sink.flush())
    sink.add("metrics_raw", [raw_row(time.time(), 1)], partition=0, offset=1, event_ts=time.time())
    clock[0] += 1.5
    assert sink.due(), "a live row waited for the backlog's interval"
    assert sink.max_age_now() == 1.0


def test_a_flush_is_not_forced_by_waiting_acks_while_rows_are_not_due(store, monkeypatch):
    """Acks wait for the rows they vouch for; a flush every timer tick only because acks wait was two inserts a
    second per table, whatever the interval."""
    from pipelines.context import flush_wanted

    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    sink = ClickHouseSink(store, max_age_s=1.0)
    ledger = AckLedger(lambda event: None)
    ledger.hold("metrics", 0, 7, object())
    assert flush_wanted(sink, ledger), "acks with no rows to wait for must go out"
    sink.add("metrics_raw", [raw_row(NOW, 0)], partition=0, offset=0)
    clock[0] += 0.5
    assert not flush_wanted(sink, ledger)
    clock[0] += 0.6
    assert flush_wanted(sink, ledger)
