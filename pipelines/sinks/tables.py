"""The columns the pipeline writes to each ClickHouse table, and how to convert them.

Rows travel through the pipeline as tuples with timestamps as float epoch
seconds; here they become the integer ticks clickhouse-connect writes fastest
(milliseconds for DateTime64(3), seconds for DateTime).

A table marked ``columnar`` (the bulk ones: ``logs``, one row per log line;
``features_1m`` and ``anomaly_scores``, rows per series) is buffered as columns
(:class:`ColumnRows`) and inserted column-oriented: no list per row waits in
the sink for the garbage collector to rescan, the timestamps are converted a
whole column at a time, and clickhouse-connect need not turn rows into columns
(1.45 against 1.9 us per score row, buffer and insert, on chDB; issue 10).
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
    #: Buffer and insert as columns (:class:`ColumnRows`, which converts the timestamps itself).
    columnar: bool = False

    def new_rows(self) -> list | ColumnRows:
        """An empty buffer for this table's rows: a list, or :class:`ColumnRows` for a columnar table."""
        return ColumnRows(self) if self.columnar else []

    def converter(self):
        """Row -> stored row, or None when rows go in as they are (or, ``columnar``, are converted by
        :class:`ColumnRows`)."""
        if self.columnar:
            return None
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


class ColumnRows:
    """A table's rows kept as one list per column, converted, ready for a column-oriented insert.

    It stands in for the list of converted rows the sink would keep: ``len``,
    ``extend(rows)`` with row tuples, and ``rows[i]`` (one converted row, for the
    sink's row-by-row quarantine of a batch the store refused).

    >>> spec = TableSpec("t", ("ts", "node"), millis=("ts",), columnar=True)
    >>> rows = spec.new_rows()
    >>> rows.extend([(1.5, "n1"), (2.0, "n2")])
    >>> len(rows), rows.columns, rows[1]
    (2, [[1500, 2000], ['n1', 'n2']], [2000, 'n2'])
    """

    __slots__ = ("spec", "columns", "_convert")

    #: Read by :meth:`pipelines.store.Store.insert`: send ``columns``, column-oriented.
    column_oriented = True

    def __init__(self, spec: TableSpec) -> None:
        self.spec = spec
        self.columns: list[list] = [[] for _ in spec.columns]
        self._convert = [_to_millis if c in spec.millis else _to_seconds if c in spec.seconds else None
                         for c in spec.columns]

    def __len__(self) -> int:
        return len(self.columns[0])

    def __getitem__(self, i: int) -> list:
        return [col[i] for col in self.columns]

    def extend(self, rows) -> None:
        rows = rows if isinstance(rows, (list, tuple)) else list(rows)
        if not rows:
            return
        width = len(self.columns)
        if set(map(len, rows)) != {width}:  # a short row would shift every column after it
            raise ValueError(f"{self.spec.name}: every row needs {width} values")
        for col, convert, values in zip(self.columns, self._convert, zip(*rows)):
            col.extend(convert(values) if convert else values)


def _to_millis(values) -> list:
    return [None if v is None else round(v * 1000) for v in values]


def _to_seconds(values) -> list:
    return [int(v) for v in values]


METRICS_RAW = TableSpec("metrics_raw", ("ts", "node", "gpu", "uuid", "metric", "value", "unit", "labels",
                                        "src_partition", "src_offset"),
                        millis=("ts",), source_columns=("src_partition", "src_offset"))
FEATURES_1M = TableSpec("features_1m", ("window_start", "node", "gpu", "uuid", "metric", "count", "min", "max",
                                        "mean", "last", "p95"), seconds=("window_start",), columnar=True)
ANOMALY_SCORES = TableSpec("anomaly_scores", ("ts", "node", "gpu", "detector", "subject", "score", "threshold",
                                              "anomalous"), millis=("ts",), columnar=True)
ALERTS = TableSpec("alerts", ("event_ts", "fingerprint", "status", "alertname", "severity", "node", "gpu", "source",
                              "starts_at", "ends_at", "labels", "annotations", "evidence", "evidence_query"),
                   millis=("event_ts", "starts_at", "ends_at"))
LOGS = TableSpec("logs", ("ts", "node", "source", "level", "message", "template_id", "labels", "src_partition",
                          "src_offset", "host", "component", "logged_at"), millis=("ts",),
                 source_columns=("src_partition", "src_offset"), columnar=True)
NODE_EVENTS = TableSpec("node_events", ("ts", "node", "gpu", "source", "code", "severity", "action", "title",
                                        "message", "pci_bus_id", "labels"), millis=("ts",))
HEARTBEATS = TableSpec("heartbeats", ("ts", "node", "agent_version", "gpu_count", "collectors"), millis=("ts",))

CORE_TABLES = {t.name: t for t in (METRICS_RAW, FEATURES_1M, ANOMALY_SCORES, ALERTS, LOGS, NODE_EVENTS, HEARTBEATS)}


def history_spec(table: str, columns: tuple[str, ...]) -> TableSpec:
    """Spec for a history table: float columns named ``ts`` or ``*_at`` are timestamps."""
    millis = tuple(c for c in columns if c == "ts" or c.endswith("_at"))
    return TableSpec(table, columns, millis=millis)
