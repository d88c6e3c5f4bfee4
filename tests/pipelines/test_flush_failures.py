"""A flush that fails part-way loses nothing and acks nothing ahead of storage (real chDB, injected faults).

The store is the real embedded ClickHouse; only the connection is made to fail, at the point each
test names: in the middle of a flush of several tables, or in the middle of the row-by-row
quarantine that sets undecodable rows aside. Then the store recovers, and every row must be there
exactly once, and no Kafka offset may have been acked while a row derived from it was not stored.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from clickhouse_connect.driver.exceptions import OperationalError

from pipelines.commit import AckLedger
from pipelines.sinks.clickhouse import ClickHouseSink

NOW = time.time() - 3600


class FlakyStore:
    """The real store, with inserts that fail on demand like a dropped connection would."""

    def __init__(self, store) -> None:
        self._store = store
        self.database = store.database
        #: fail the n-th insert from now (1 = the next one), and every one after while ``down``
        self.fail_at: int | None = None
        self.down = False
        self.calls = 0
        #: store the next insert, then fail as if the answer was lost on the way back
        self.lose_answer = False

    def insert(self, table, rows, columns, dedup_token=None):
        self.calls += 1
        if self.down or (self.fail_at is not None and self.calls >= self.fail_at):
            self.down = True
            raise OperationalError("injected: connection reset by peer")
        self._store.insert(table, rows, columns, dedup_token)
        if self.lose_answer:
            self.lose_answer = False
            raise OperationalError("injected: read timed out (the insert landed)")

    def recover(self) -> None:
        self.down, self.fail_at = False, None

    def query(self, *a, **kw):
        return self._store.query(*a, **kw)


def raw_row(ts: float, offset: int, value=1.0, partition: int = 0) -> tuple:
    return (ts, "n1", 0, "GPU-0", "temp", value, "C", {}, partition, offset)


def score_row(ts: float) -> tuple:
    return (ts, "n1", 0, "zscore", "temp", 1.0, 6.0, 0)


def count(store, table="metrics_raw") -> int:
    return store.query(f"SELECT count() FROM {store.database}.{table}").rows[0][0]


def stored_offsets(store) -> set[int]:
    return {r[0] for r in store.query(f"SELECT DISTINCT src_offset FROM {store.database}.metrics_raw").rows}


class Worker:
    """A sink and an ack ledger wired as the pipeline wires them; acks are checked against the store."""

    def __init__(self, store, **sink_kw) -> None:
        from pipelines.commit import flush_then_ack

        self.store = store
        self.flaky = FlakyStore(store)
        self.rejected: list[tuple[str, str]] = []
        self.rejected_offsets: set[int] = set()

        async def on_rejected(table, row, reason):
            self.rejected.append((table, reason))
            if table == "metrics_raw":
                self.rejected_offsets.add(row[-1])

        self.sink = ClickHouseSink(self.flaky, on_rejected=on_rejected, retry_max_s=0.05, **sink_kw)
        self.acked: list[int] = []
        self.acked_ahead: list[int] = []

        async def ack(offset):
            # acked means: every row derived from it is stored (or dead-lettered as refused)
            if offset not in stored_offsets(store) | self.rejected_offsets:
                self.acked_ahead.append(offset)
            self.acked.append(offset)

        self.ledger = AckLedger(ack)
        self.flush_then_ack = flush_then_ack

    def consume(self, offset: int, value=1.0, ts: float | None = None) -> None:
        ts = NOW + offset if ts is None else ts
        self.sink.add("metrics_raw", [raw_row(ts, offset, value)], partition=0, offset=offset)
        self.sink.add("anomaly_scores", [score_row(ts)])
        self.ledger.hold("m", 0, offset, offset)

    def flush(self):
        return asyncio.run(self.flush_then_ack(self.sink, self.ledger, floor=lambda topic, partition: None))


@pytest.mark.parametrize("fail_at", [1, 2], ids=["first-table", "second-table"])
def test_a_flush_failing_mid_batch_keeps_its_rows_and_acks_nothing_until_they_are_stored(store, fail_at):
    w = Worker(store)
    for off in range(10):
        w.consume(off)
    w.flaky.fail_at = fail_at
    w.flush()  # fails part-way: one table may be stored, the other not
    for off in range(10, 20):  # consumption goes on while the store is down
        w.consume(off)
    w.flush()
    assert w.acked == [] and w.sink.buffered_rows() > 0
    w.flaky.recover()
    time.sleep(0.1)  # past the retry backoff
    w.flush()
    assert w.sink.buffered_rows() == 0
    assert count(store) == 20 and count(store, "anomaly_scores") == 20
    assert w.acked == list(range(20)) and w.acked_ahead == []


def test_a_connection_lost_during_quarantine_loses_no_row_and_stores_none_twice(store):
    w = Worker(store)
    for off in range(10):
        w.consume(off, value="oops" if off == 3 else 1.0)  # one row the driver cannot encode
    # the batch insert fails on the bad row; the row-by-row quarantine then loses the connection
    # after storing a few good rows
    w.flaky.fail_at = 6
    w.flush()
    assert w.acked_ahead == []
    assert count(store) < 9
    w.consume(10)
    w.flush()  # still down
    w.flaky.recover()
    time.sleep(0.1)
    w.flush()
    assert count(store) == 10  # 11 consumed, one rejected, none twice
    assert sorted(stored_offsets(store)) == [o for o in range(11) if o != 3]
    assert [t for t, _ in w.rejected] == ["metrics_raw"]
    assert w.acked == list(range(11)) and w.acked_ahead == []


def test_a_permanent_server_error_is_not_retried_forever(store):
    """A batch the server refuses for its content is set aside row by row; the rest is stored."""
    w = Worker(store)
    w.sink.add("metrics_raw", [raw_row(NOW, 0), raw_row(NOW + 1, 0, partition=70_000)], partition=0, offset=0)
    w.ledger.hold("m", 0, 0, 0)
    w.flush()
    assert w.sink.buffered_rows() == 0 and w.acked == [0]
    assert count(store) == 1 and len(w.rejected) == 1


def test_an_outage_does_not_leave_the_sink_backing_off_for_long_after_recovery(store):
    w = Worker(store)
    w.sink.retry_max_s = 2.0
    w.flaky.down = True
    w.consume(0)
    for _ in range(12):  # many failed attempts: the backoff is at its ceiling
        w.flush()
        w.sink._retry_at = 0.0  # noqa: SLF001 - skip the wait; only its ceiling matters here
    assert w.sink.retry_in() <= 2.0
    assert w.sink.retry_max_s <= 5.0


def test_failing_inserts_are_counted_in_a_prometheus_counter(store):
    from pipelines import telemetry

    def errors():
        return telemetry.REGISTRY.get_sample_value("gpuwatch_insert_errors_total",
                                                   {"table": "metrics_raw", "kind": "recoverable"}) or 0.0

    before = errors()
    w = Worker(store)
    w.flaky.down = True
    w.consume(0)
    w.flush()
    assert errors() == before + 1


def test_an_insert_that_landed_but_whose_answer_was_lost_is_not_stored_twice(store):
    """A batch is retried as it was (same rows, same token), so the store drops the second copy."""
    w = Worker(store)
    for off in range(10):
        w.consume(off)
    w.flaky.lose_answer = True  # the first table's insert lands, then the connection drops
    w.flush()
    assert w.acked == []
    time.sleep(0.1)
    w.flaky.lose_answer = False
    w.flush()
    assert count(store) == 10 and count(store, "anomaly_scores") == 10
    assert w.acked == list(range(10))

