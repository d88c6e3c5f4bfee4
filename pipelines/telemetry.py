"""Prometheus metrics for the pipeline: what came in, what was refused and why, what went out.

Cumulative counts are Counters (``*_total``), so ``rate()`` and ``increase()``
work on them; only levels (rows waiting, consumer lag) are Gauges. Every row or
message the pipeline gives up on is counted with a reason. ``/healthz`` reads
the same registry (:mod:`pipelines.health`), so the two never disagree.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

REGISTRY = CollectorRegistry(auto_describe=True)

RECEIVED = Counter("gpuwatch_messages_received_total", "Messages consumed", ["topic"], registry=REGISTRY)
DEAD_LETTERED = Counter("gpuwatch_messages_dead_lettered_total", "Messages refused and sent to the dead-letter topic",
                        ["topic", "stage"], registry=REGISTRY)
SAMPLES = Counter("gpuwatch_samples_received_total", "Metric samples in valid batches", registry=REGISTRY)
REPLAYED = Counter("gpuwatch_messages_replayed_total",
                   "Messages re-read after a restart whose rows were already stored", ["topic"], registry=REGISTRY)
REDELIVERED = Counter("gpuwatch_messages_redelivered_total",
                      "Messages the consumer handed over again in the same run; skipped, not handled twice",
                      ["topic"], registry=REGISTRY)
REVOKED_IN_FLIGHT = Counter("gpuwatch_messages_revoked_in_flight_total",
                            "Messages whose partition was revoked while handled; dropped, the next owner re-reads them",
                            ["topic"], registry=REGISTRY)
ROWS_WRITTEN = Counter("gpuwatch_rows_written_total", "Rows stored in ClickHouse", ["table"], registry=REGISTRY)
ROWS_DROPPED = Counter("gpuwatch_rows_dropped_total",
                       "Rows not stored, by reason (rejected: the store refused the row; it went to the dead-letter topic)",
                       ["table", "reason"], registry=REGISTRY)
INSERT_ERRORS = Counter("gpuwatch_insert_errors_total",
                        "Failed ClickHouse insert attempts (recoverable: the batch waits and is retried)",
                        ["table", "kind"], registry=REGISTRY)
ALERTS = Counter("gpuwatch_alert_events_total", "Alert events published", ["status"], registry=REGISTRY)
LATE_SAMPLES = Counter("gpuwatch_late_samples_total",
                       "Samples too late for their window (stored raw, not in features)", registry=REGISTRY)
PROCESSOR_ERRORS = Counter("gpuwatch_processor_errors_total", "Unexpected errors handling a valid message",
                           ["processor"], registry=REGISTRY)
BUFFERED_ROWS = Gauge("gpuwatch_sink_buffered_rows", "Rows waiting to be stored in ClickHouse", registry=REGISTRY)
BUFFER_LIMIT = Gauge("gpuwatch_sink_buffer_limit_rows", "Rows that may wait before consumption pauses",
                     registry=REGISTRY)
INSERTS_FAILING = Gauge("gpuwatch_sink_consecutive_failures",
                        "Insert attempts failed in a row (0: the store takes writes)", registry=REGISTRY)
UNACKED = Gauge("gpuwatch_unacked_messages", "Messages consumed whose rows are not all stored yet", registry=REGISTRY)
CATCHING_UP = Gauge("gpuwatch_catching_up", "1 while the newest metric batch handled trails the clock by more than "
                    "flush_backlog_interval_s: inserts and fetches are sized for throughput, not latency",
                    registry=REGISTRY)
CONSUMER_LAG = Gauge("gpuwatch_consumer_lag_messages", "Messages on the broker not read yet, over all partitions",
                     registry=REGISTRY)
KAFKA_UNREACHABLE = Gauge("gpuwatch_kafka_unreachable_seconds",
                          "Seconds without a connection to any Kafka broker (0 while one is connected)",
                          registry=REGISTRY)
HEALTHY = Gauge("gpuwatch_healthy", "1 when /healthz answers 200, 0 when it answers 503", registry=REGISTRY)
#: What a worker's CPU goes to, stage by stage, on the clock of the thread that ran the stage: time spent
#: waiting (for the GIL, for the store) counts nowhere. A sampling profiler charges a thread that waits for
#: the GIL inside a call to that call, and put Kafka's decompression at 8 % of a worker it cost 2 % (issue 10).
STAGE_CPU = Counter("gpuwatch_stage_cpu_seconds_total",
                    "CPU seconds per metrics stage (decode, windows, rules, detectors, arrow, insert), "
                    "on the thread that ran it", ["stage"], registry=REGISTRY)


def on_cpu_clock(stage: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, its thread CPU added to ``stage`` (for work handed to an executor thread)."""
    t0 = time.thread_time()
    try:
        return fn(*args)
    finally:
        STAGE_CPU.labels(stage).inc(time.thread_time() - t0)
