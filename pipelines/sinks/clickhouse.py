"""Batched, idempotent ClickHouse writes, and the offsets that are safe to commit.

Rows are buffered per table and written in one insert per table per flush
(every ``max_age_s`` or ``max_rows``). Delivery is at-least-once from Kafka and
exactly-once into the tables that record their Kafka source:

* each insert carries an ``insert_deduplication_token`` built from the table
  and the (partition, first offset, last offset) ranges it covers, and a failed
  insert is retried with the same rows and the same token, so a retry whose
  first attempt did land is dropped by ClickHouse;
* tables with source columns (``metrics_raw``, ``logs``) are resumed from the
  highest offset already stored per partition, so a replay after a crash skips
  what is already there (:meth:`ClickHouseSink.stored_upto`).

When the store is down, buffers grow to ``max_buffered_rows``; past that
:meth:`ClickHouseSink.overloaded` turns true and processors wait, which stops
consumption instead of eating memory (backpressure).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from clickhouse_connect.driver.exceptions import DataError

from pipelines import telemetry
from pipelines.sinks.tables import CORE_TABLES, TableSpec
from pipelines.store import Store

log = logging.getLogger("gpuwatch.sink.clickhouse")

#: Exceptions the driver raises while *encoding* rows: bad data, not a bad connection.
DATA_ERRORS = (TypeError, ValueError, AttributeError, OverflowError, KeyError, struct.error, DataError)


@dataclass
class _Buffer:
    spec: TableSpec
    rows: list = field(default_factory=list)
    #: partition -> [first, last] source offsets of the rows buffered
    ranges: dict[int, list[int]] = field(default_factory=dict)


@dataclass
class SinkStats:
    rows_written: dict[str, int] = field(default_factory=dict)
    inserts: int = 0
    insert_errors: int = 0
    skipped_replayed: int = 0
    rejected_rows: int = 0
    last_error: str = ""
    last_flush_s: float = 0.0


class ClickHouseSink:
    def __init__(self, store: Store, *, max_rows: int = 200_000, max_age_s: float = 1.0,
                 max_buffered_rows: int = 2_000_000, retry_max_s: float = 30.0,
                 on_rejected: Callable[[str, Any, str], None] | None = None) -> None:
        self.store = store
        #: Called with (table, row, reason) for a row the driver cannot encode; it is not retried.
        self.on_rejected = on_rejected
        self.max_rows = max_rows
        self.max_age_s = max_age_s
        self.max_buffered_rows = max_buffered_rows
        self.retry_max_s = retry_max_s
        self.specs: dict[str, TableSpec] = dict(CORE_TABLES)
        self._converters = {name: spec.converter() for name, spec in self.specs.items()}
        self._buffers: dict[str, _Buffer] = {}
        self._oldest: float | None = None
        self._stored_upto: dict[tuple[str, int], int] = {}
        self._last_windows: dict[str, int] | None = None
        self._flush_lock = asyncio.Lock()
        self.stats = SinkStats()

    # -- what is already stored ------------------------------------------------------------
    def stored_upto(self, table: str, partition: int) -> int:
        """Highest source offset of ``partition`` stored in ``table`` (-1 if none). Cached."""
        key = (table, partition)
        hit = self._stored_upto.get(key)
        if hit is None:
            spec = self.specs[table]
            part_col, off_col = spec.source_columns  # type: ignore[misc]
            res = self.store.query(
                f"SELECT max({off_col}), count() FROM {self.store.database}.{table} WHERE {part_col} = {int(partition)}")
            mx, n = res.rows[0]
            hit = int(mx) if n else -1
            self._stored_upto[key] = hit
        return hit

    def last_window(self, node: str) -> int | None:
        """Start (epoch s) of the newest feature window stored for ``node``, or None. Cached."""
        if self._last_windows is None:
            res = self.store.query(
                f"SELECT node, toUnixTimestamp(max(window_start)) FROM {self.store.database}.features_1m "
                "WHERE window_start > now() - INTERVAL 2 DAY GROUP BY node")
            self._last_windows = {n: int(t) for n, t in res.rows}
        return self._last_windows.get(node)

    def forget_partitions(self, partitions: Sequence[int]) -> None:
        """A revoked partition may be written by another worker before it comes back."""
        for key in [k for k in self._stored_upto if k[1] in set(partitions)]:
            del self._stored_upto[key]
        self._last_windows = None

    # -- buffering -------------------------------------------------------------------------
    def register(self, spec: TableSpec) -> None:
        self.specs[spec.name] = spec
        self._converters[spec.name] = spec.converter()

    def add(self, table: str, rows: Sequence[tuple], *, partition: int | None = None,
            offset: int | None = None) -> None:
        if not rows:
            return
        buf = self._buffers.get(table)
        if buf is None:
            buf = self._buffers[table] = _Buffer(self.specs[table])
        conv = self._converters[table]
        buf.rows.extend(map(conv, rows) if conv else rows)
        if partition is not None and offset is not None:
            rng = buf.ranges.get(partition)
            if rng is None:
                buf.ranges[partition] = [offset, offset]
            else:
                rng[0], rng[1] = min(rng[0], offset), max(rng[1], offset)
            if buf.spec.source_columns:
                key = (table, partition)
                if self._stored_upto.get(key, -1) < offset:
                    self._stored_upto[key] = offset
        if self._oldest is None:
            self._oldest = time.monotonic()

    def buffered_rows(self) -> int:
        return sum(len(b.rows) for b in self._buffers.values())

    def due(self) -> bool:
        if self._oldest is None:
            return False
        return time.monotonic() - self._oldest >= self.max_age_s or self.buffered_rows() >= self.max_rows

    def overloaded(self) -> bool:
        return self.buffered_rows() >= self.max_buffered_rows

    # -- writing ---------------------------------------------------------------------------
    @staticmethod
    def dedup_token(table: str, ranges: dict[int, list[int]], rows: int) -> str | None:
        if not ranges:
            return None
        desc = table + ";" + ";".join(f"{p}:{a}-{b}" for p, (a, b) in sorted(ranges.items())) + f";{rows}"
        return hashlib.sha1(desc.encode()).hexdigest()

    async def flush(self) -> int:
        """Write everything buffered; returns rows written. Retries until it succeeds.

        Each table's batch is retried with the same token until stored, with
        exponential backoff and jitter; meanwhile new rows go to fresh buffers.
        """
        async with self._flush_lock:
            batches, self._buffers, self._oldest = self._buffers, {}, None
            written = 0
            loop = asyncio.get_running_loop()
            t0 = time.monotonic()
            for table, buf in batches.items():
                if not buf.rows:
                    continue
                token = self.dedup_token(table, buf.ranges, len(buf.rows))
                delay = 0.2
                while True:
                    try:
                        await loop.run_in_executor(None, self.store.insert, table, buf.rows, buf.spec.columns, token)
                        break
                    except DATA_ERRORS:
                        # The rows themselves cannot be encoded: retrying the same batch would
                        # wedge the sink forever, so store row by row and set the bad ones aside.
                        await loop.run_in_executor(None, self._quarantine, table, buf, token)
                        break
                    except Exception as e:  # noqa: BLE001 - any driver failure is retried the same way
                        self.stats.insert_errors += 1
                        self.stats.last_error = f"{table}: {e}"[:500]
                        log.warning("insert into %s failed (%s); retrying in %.1fs", table, e, delay)
                        await asyncio.sleep(delay * (0.5 + random.random()))
                        delay = min(delay * 2, self.retry_max_s)
                self.stats.inserts += 1
                self.stats.rows_written[table] = self.stats.rows_written.get(table, 0) + len(buf.rows)
                telemetry.ROWS_WRITTEN.labels(table).inc(len(buf.rows))
                written += len(buf.rows)
            self.stats.last_flush_s = time.monotonic() - t0
            return written

    def _quarantine(self, table: str, buf: _Buffer, token: str | None) -> None:
        columns = buf.spec.columns
        bad = 0
        for i, row in enumerate(buf.rows):
            try:
                self.store.insert(table, [row], columns, f"{token}:{i}" if token else None)
            except DATA_ERRORS as e:
                bad += 1
                self.stats.rejected_rows += 1
                log.error("row for %s rejected (%s): %r", table, e, row)
                if self.on_rejected:
                    self.on_rejected(table, row, str(e) or type(e).__name__)
        buf.rows = [None] * (len(buf.rows) - bad)  # only the count is used afterwards

    def snapshot(self) -> dict[str, Any]:
        return {"buffered_rows": self.buffered_rows(), "rows_written": dict(self.stats.rows_written),
                "inserts": self.stats.inserts, "insert_errors": self.stats.insert_errors,
                "skipped_replayed": self.stats.skipped_replayed, "last_error": self.stats.last_error}
