"""Raw samples reach the store as Arrow column batches, with the row path's guarantees.

The metrics processor hands the sink whole column batches (no row tuples). A flush
inserts them as one Arrow table under a deduplication token built like a row batch's,
so a retry after a lost answer is stored once, a failing store keeps the batch and
acks nothing, and a batch the store refuses for its content is set aside row by row.
"""

from __future__ import annotations

import asyncio
import time

import orjson
from clickhouse_connect.driver.exceptions import OperationalError

from pipelines.commit import AckLedger, flush_then_ack
from pipelines.sinks.clickhouse import ClickHouseSink
from pipelines.transforms.metric_columns import decode_metric_messages
from tests.pipelines.test_flush_failures import FlakyStore, count, stored_offsets

NOW = time.time() - 3600


class FlakyArrowStore(FlakyStore):
    """Also fails Arrow inserts on demand; ``refuse_offset``: a permanent error for batches holding it."""

    refuse_offset: int | None = None

    def insert_arrow(self, table, arrow_table, dedup_token=None):
        self.calls += 1
        if self.down or (self.fail_at is not None and self.calls >= self.fail_at):
            self.down = True
            raise OperationalError("injected: connection reset by peer")
        if self.refuse_offset is not None and self.refuse_offset in arrow_table.column("src_offset").to_pylist():
            raise TypeError("injected: a value the driver cannot encode")
        self._store.insert_arrow(table, arrow_table, dedup_token)
        if self.lose_answer:
            self.lose_answer = False
            raise OperationalError("injected: read timed out (the insert landed)")


def message(offset: int) -> bytes:
    return orjson.dumps({"node": "n1", "ts": NOW + offset, "samples": [
        {"gpu": g, "uuid": f"GPU-{g}", "metric": "gpu_temp_c", "value": 50.0 + g, "unit": "C",
         "labels": {"job": "train"} if g % 2 else {}} for g in range(4)]})


class Worker:
    def __init__(self, store) -> None:
        self.flaky = FlakyArrowStore(store)
        self.rejected: list[tuple] = []

        async def on_rejected(table, row, reason):
            self.rejected.append(row)

        self.sink = ClickHouseSink(self.flaky, on_rejected=on_rejected, retry_max_s=0.05)
        self.acked: list[int] = []
        self.acked_ahead: list[int] = []

        async def ack(offset):
            if offset not in stored_offsets(store) | {r[-1] for r in self.rejected}:
                self.acked_ahead.append(offset)
            self.acked.append(offset)

        self.ledger = AckLedger(ack)

    def consume(self, offset: int) -> None:
        cols, rejected = decode_metric_messages([(message(offset), 0, offset)])
        assert not rejected
        self.sink.add_columns("metrics_raw", cols, partition=0, offset=offset)
        self.ledger.hold("m", 0, offset, offset)

    def flush(self):
        return asyncio.run(flush_then_ack(self.sink, self.ledger, floor=lambda topic, partition: None))


def test_column_batches_are_stored_with_their_values_labels_and_source(store):
    w = Worker(store)
    for off in range(5):
        w.consume(off)
    assert w.sink.buffered_rows() == 20
    w.flush()
    assert w.sink.buffered_rows() == 0 and w.acked == list(range(5))
    rows = store.query(f"SELECT node, gpu, uuid, value, unit, labels, src_partition, src_offset, "
                       f"toUnixTimestamp64Milli(ts) FROM {store.database}.metrics_raw "
                       f"WHERE src_offset = 3 ORDER BY gpu").rows
    assert [r[:7] for r in rows] == [("n1", g, f"GPU-{g}", 50.0 + g, "C", {"job": "train"} if g % 2 else {}, 0)
                                     for g in range(4)]
    assert {r[7] for r in rows} == {3} and {r[8] for r in rows} == {round((NOW + 3) * 1000)}
    assert w.sink.stored_upto("metrics_raw", 0) == 4


def test_a_failing_store_keeps_column_batches_and_acks_nothing_until_stored(store):
    w = Worker(store)
    for off in range(10):
        w.consume(off)
    w.flaky.fail_at = 1
    w.flush()
    for off in range(10, 15):
        w.consume(off)
    w.flush()
    assert w.acked == [] and w.sink.buffered_rows() == 60
    w.flaky.recover()
    time.sleep(0.1)
    w.flush()
    assert count(store) == 60 and w.acked == list(range(15)) and w.acked_ahead == []


def test_an_arrow_insert_that_landed_but_whose_answer_was_lost_is_not_stored_twice(store):
    w = Worker(store)
    for off in range(10):
        w.consume(off)
    w.flaky.lose_answer = True
    w.flush()
    assert w.acked == []
    time.sleep(0.1)
    w.flush()
    assert count(store) == 40 and w.acked == list(range(10))


def test_a_column_batch_refused_for_its_content_is_set_aside_row_by_row(store):
    w = Worker(store)
    for off in range(6):
        w.consume(off)
    w.flaky.refuse_offset = 2
    w.flush()
    assert w.sink.buffered_rows() == 0 and w.acked == list(range(6))
    assert count(store) == 20 and sorted(stored_offsets(store)) == [0, 1, 3, 4, 5]
    assert len(w.rejected) == 4 and {r[-1] for r in w.rejected} == {2} and w.rejected[0][1] == "n1"
