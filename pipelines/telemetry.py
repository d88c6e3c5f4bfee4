"""Prometheus metrics for the pipeline: what came in, what was refused and why, what went out."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

REGISTRY = CollectorRegistry(auto_describe=True)

RECEIVED = Counter("gpuwatch_messages_received_total", "Messages consumed", ["topic"], registry=REGISTRY)
DEAD_LETTERED = Counter("gpuwatch_messages_dead_lettered_total", "Messages refused and sent to the dead-letter topic",
                        ["topic", "stage"], registry=REGISTRY)
SAMPLES = Counter("gpuwatch_samples_received_total", "Metric samples in valid batches", registry=REGISTRY)
REPLAYED = Counter("gpuwatch_messages_replayed_total",
                   "Messages re-read after a restart whose rows were already stored", ["topic"], registry=REGISTRY)
ROWS_WRITTEN = Counter("gpuwatch_rows_written_total", "Rows stored in ClickHouse", ["table"], registry=REGISTRY)
INSERT_ERRORS = Gauge("gpuwatch_insert_errors", "Failed ClickHouse inserts (each retried)", registry=REGISTRY)
ALERTS = Counter("gpuwatch_alert_events_total", "Alert events published", ["status"], registry=REGISTRY)
LATE_SAMPLES = Gauge("gpuwatch_late_samples", "Samples too late for their window (stored raw, not in features)",
                     registry=REGISTRY)
BUFFERED_ROWS = Gauge("gpuwatch_sink_buffered_rows", "Rows waiting for the next ClickHouse insert", registry=REGISTRY)
PROCESSOR_ERRORS = Counter("gpuwatch_processor_errors_total", "Unexpected errors handling a valid message",
                           ["processor"], registry=REGISTRY)
