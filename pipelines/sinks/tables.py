"""The columns the pipeline writes to each ClickHouse table, and how to convert them.

Rows travel through the pipeline as tuples with timestamps as float epoch
seconds; here they become the integer ticks clickhouse-connect writes fastest
(milliseconds for DateTime64(3), seconds for DateTime).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[str, ...]
    #: DateTime64(3) columns, given as float seconds -> int milliseconds.
    millis: tuple[str, ...] = ()
    #: DateTime columns, given as float seconds -> int seconds.
    seconds: tuple[str, ...] = ()
    #: Columns naming the Kafka source of each row, used to resume without duplicates.
    source_columns: tuple[str, str] | None = None

    def converter(self):
        idx_ms = [self.columns.index(c) for c in self.millis]
        idx_s = [self.columns.index(c) for c in self.seconds]
        if not idx_ms and not idx_s:
            return None

        def convert(row: tuple) -> list:
            out = list(row)
            for i in idx_ms:
                v = out[i]
                out[i] = None if v is None else int(round(v * 1000))
            for i in idx_s:
                out[i] = int(out[i])
            return out

        return convert


METRICS_RAW = TableSpec("metrics_raw", ("ts", "node", "gpu", "uuid", "metric", "value", "unit", "labels",
                                        "src_partition", "src_offset"),
                        millis=("ts",), source_columns=("src_partition", "src_offset"))
FEATURES_1M = TableSpec("features_1m", ("window_start", "node", "gpu", "uuid", "metric", "count", "min", "max",
                                        "mean", "last", "p95"), seconds=("window_start",))
ANOMALY_SCORES = TableSpec("anomaly_scores", ("ts", "node", "gpu", "detector", "subject", "score", "threshold",
                                              "anomalous"), millis=("ts",))
ALERTS = TableSpec("alerts", ("event_ts", "fingerprint", "status", "alertname", "severity", "node", "gpu", "source",
                              "starts_at", "ends_at", "labels", "annotations", "evidence", "evidence_query"),
                   millis=("event_ts", "starts_at", "ends_at"))
LOGS = TableSpec("logs", ("ts", "node", "source", "level", "message", "template_id", "labels", "src_partition",
                          "src_offset", "host", "component", "logged_at"), millis=("ts",),
                 source_columns=("src_partition", "src_offset"))
NODE_EVENTS = TableSpec("node_events", ("ts", "node", "gpu", "source", "code", "severity", "action", "title",
                                        "message", "pci_bus_id", "labels"), millis=("ts",))
HEARTBEATS = TableSpec("heartbeats", ("ts", "node", "agent_version", "gpu_count", "collectors"), millis=("ts",))

CORE_TABLES = {t.name: t for t in (METRICS_RAW, FEATURES_1M, ANOMALY_SCORES, ALERTS, LOGS, NODE_EVENTS, HEARTBEATS)}


def history_spec(table: str, columns: tuple[str, ...]) -> TableSpec:
    """Spec for a history table: float columns named ``ts`` or ``*_at`` are timestamps."""
    millis = tuple(c for c in columns if c == "ts" or c.endswith("_at"))
    return TableSpec(table, columns, millis=millis)
