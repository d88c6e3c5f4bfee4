"""/healthz's judgement (pipelines/health.py) without a broker: each reason, and the gauges it reads."""

from __future__ import annotations

import time

from pipelines import health, telemetry
from pipelines.commit import AckLedger
from pipelines.sinks.clickhouse import ClickHouseSink


class _Ctx:
    def __init__(self, sink) -> None:
        self.sink = sink
        self.ledger = AckLedger(lambda e: None)


def _row(offset: int) -> tuple:
    return (time.time(), "n1", 0, "GPU-0", "temp", 1.0, "C", {}, 0, offset)


def test_a_full_buffer_means_consumption_paused_and_is_reported_with_the_same_numbers_as_metrics(store):
    sink = ClickHouseSink(store, max_buffered_rows=3)
    ctx = _Ctx(sink)
    assert health.report(ctx, max_consumer_lag=10, lag=lambda: 0).ok
    sink.add("metrics_raw", [_row(i) for i in range(3)], partition=0, offset=2)
    h = health.report(ctx, max_consumer_lag=10, lag=lambda: 0)
    assert not h.ok and any("over its bound" in r and "consumption paused" in r for r in h.reasons), h.reasons
    assert h.numbers["buffered_rows"] == telemetry.REGISTRY.get_sample_value("gpuwatch_sink_buffered_rows") == 3
    assert telemetry.REGISTRY.get_sample_value("gpuwatch_healthy") == 0


def test_consumer_lag_over_its_limit_is_unhealthy(store):
    ctx = _Ctx(ClickHouseSink(store))
    h = health.report(ctx, max_consumer_lag=100, lag=lambda: 101)
    assert not h.ok and any("consumer lag 101" in r and "GPUWATCH_MAX_CONSUMER_LAG" in r for r in h.reasons)
    assert health.report(ctx, max_consumer_lag=100, lag=lambda: 100).ok


def test_consumer_lag_counts_unread_messages_of_assigned_partitions():
    class Consumer:
        def assignment(self):
            from faust.types import TP
            return {TP("m", 0), TP("m", 1), TP("m", 2)}

        def highwater(self, tp):
            return {0: 100, 1: 50, 2: 7}[tp.partition]

    assert health.consumer_lag(Consumer(), {("m", 0): 89, ("m", 1): 49}) == 10  # partition 2 not read yet


def test_no_broker_connected_for_longer_than_the_grace_is_unhealthy(store):
    ctx = _Ctx(ClickHouseSink(store))
    assert health.report(ctx, 100, lambda: 0, lambda: 14.0, unreachable_after_s=15).ok  # a broker restarting
    h = health.report(ctx, 100, lambda: 0, lambda: 42.0, unreachable_after_s=15)
    assert not h.ok and any(r.startswith("Kafka unreachable for 42 s") for r in h.reasons), h.reasons
    assert h.numbers["kafka_unreachable_s"] == telemetry.REGISTRY.get_sample_value(
        "gpuwatch_kafka_unreachable_seconds") == 42
    assert health.report(ctx, 100, lambda: 0, lambda: 0.0, unreachable_after_s=15).ok


def test_reachability_counts_only_open_connections_and_unknown_changes_nothing():
    from pipelines.kafka_reachability import Reachability, connected_brokers

    class Conn:
        def __init__(self, up):
            self.up = up

        def connected(self):
            return self.up

    class App:
        consumer = type("C", (), {"_thread": type("T", (), {"_consumer": type("K", (), {
            "_client": type("L", (), {"_conns": {1: Conn(False), 2: Conn(False)}})()})()})()})()
        producer = None

    app = App()
    assert connected_brokers(app) == 0
    app.consumer._thread._consumer._client._conns[3] = Conn(True)
    assert connected_brokers(app) == 1
    assert connected_brokers(object()) is None  # no client yet (starting): unknown, not unreachable
    r = Reachability()
    blind = [r.observe(None, float(i)) for i in range(Reachability.BLIND_AFTER + 5)]
    assert r.unreachable_for(100.0) == 0.0  # unknown is never unreachable...
    assert blind.count(True) == 1  # ...but the blindness is said, once
