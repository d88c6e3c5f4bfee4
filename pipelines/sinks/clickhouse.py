"""Batched, idempotent ClickHouse writes that never lose a batch.

Rows are buffered per table and written in one insert per table per flush
(every ``max_age_s`` or ``max_rows``). While a worker catches up on a backlog
(the newest row buffered is already older than ``backlog_max_age_s``), rows
wait up to ``backlog_max_age_s`` instead: each insert is a part that chDB
merges again and again, and on a backlog those merges cost 14 of a worker's 89
CPU-seconds at a 1 s cadence (issue 10), while nobody waits on rows minutes old.
Delivery is at-least-once from Kafka and exactly-once into the tables that
record their Kafka source:

* a flush *seals* the buffers into batches and writes them in order. Each
  batch carries an ``insert_deduplication_token`` built from the table and the
  (partition, first offset, last offset) ranges it covers; a batch that fails
  stays queued, with the same rows and the same token, and is retried first on
  the next flush, so a retry whose first attempt did land is dropped by
  ClickHouse. A flush reports whether everything sealed is stored
  (:attr:`FlushResult.stored_all`); offsets are acked only then
  (:func:`pipelines.commit.flush_then_ack`).
* errors are classified. Rows the driver cannot encode, or that the server
  refuses for their content, are *permanent*: the batch is written row by row,
  each refused row goes to ``on_rejected`` (the dead-letter topic) and is
  counted in ``gpuwatch_rows_dropped_total{reason="rejected"}``. Anything else
  (connection lost, disk full, a timeout) is *recoverable*: the batch waits,
  retried with exponential backoff capped at ``retry_max_s`` (a few seconds,
  so storage catches up soon after the store returns). A flush never sleeps
  on a failing store: processors keep consuming and detecting meanwhile.
* tables with source columns (``metrics_raw``, ``logs``) are resumed from the
  highest offset already stored per partition, so a replay after a crash skips
  what is already there (:meth:`ClickHouseSink.stored_upto`); each insert into
  them records that offset in a small table (:mod:`pipelines.sinks.resume_points`).

When the store is down, queued and buffered rows grow to ``max_buffered_rows``;
past that :meth:`ClickHouseSink.overloaded` turns true and processors wait,
which stops consumption instead of eating memory (backpressure).
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import re
import struct
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Sequence

from clickhouse_connect.driver.exceptions import DatabaseError, DataError

from pipelines import telemetry
from pipelines.sinks.resume_points import ResumePoints
from pipelines.sinks.tables import CORE_TABLES, TableSpec
from pipelines.store import Store, first_line

log = logging.getLogger("gpuwatch.sink.clickhouse")

#: Exceptions the driver raises while *encoding* rows: bad data, not a bad connection.
DATA_ERRORS = (TypeError, ValueError, AttributeError, OverflowError, KeyError, struct.error, DataError)

#: ClickHouse error codes that blame the rows, not the store: parse and type errors.
#: (CANNOT_PARSE_*, TYPE_MISMATCH, ARGUMENT_OUT_OF_BOUND, CANNOT_CONVERT_TYPE, INCORRECT_DATA,
#: TOO_LARGE_STRING_SIZE, VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE)
PERMANENT_SERVER_CODES = frozenset({6, 26, 27, 38, 41, 53, 69, 70, 72, 117, 131, 321})
_CODE = re.compile(r"Code: (\d+)")

OnRejected = Callable[[str, Any, str], "Awaitable[None] | None"]


def is_permanent(error: BaseException) -> bool:
    """True when retrying the same rows can never succeed (the rows are at fault).

    >>> is_permanent(TypeError("float expected"))
    True
    >>> is_permanent(ConnectionResetError("reset by peer"))
    False
    """
    if isinstance(error, DATA_ERRORS):
        return True
    if isinstance(error, DatabaseError):
        m = _CODE.search(str(error))
        return bool(m) and int(m.group(1)) in PERMANENT_SERVER_CODES
    return False


@dataclass
class _Buffer:
    spec: TableSpec
    rows: list = field(default_factory=list)
    #: column batches (see :meth:`ClickHouseSink.add_columns`), inserted as one Arrow table
    parts: list = field(default_factory=list)
    part_rows: int = 0
    #: partition -> [first, last] source offsets of the rows buffered
    ranges: dict[int, list[int]] = field(default_factory=dict)


@dataclass
class _Batch:
    """Sealed rows of one table, written as one insert (or row by row from ``next_row``)."""

    table: str
    spec: TableSpec
    #: row tuples, or one Arrow table when ``arrow``
    rows: Any
    token: str | None
    arrow: bool = False
    #: partition -> [first, last] source offsets of the rows (their resume points once stored)
    ranges: dict[int, list[int]] = field(default_factory=dict)
    #: None: write as one insert; an index: quarantine, row by row, resuming at that row
    next_row: int | None = None
    rejected: int = 0


class _ColumnParts:
    """Column batches sealed for one insert; joined into an Arrow table only when written."""

    def __init__(self, parts: list) -> None:
        self.parts = parts
        self.rows = sum(len(p) for p in parts)  # read at every event (the sink's bound), so counted once

    def __len__(self) -> int:
        return self.rows

    def to_arrow(self) -> Any:
        return type(self.parts[0]).concat(self.parts).to_arrow()


@dataclass(frozen=True)
class FlushResult:
    #: rows stored by this flush
    written: int
    #: True when nothing sealed is left unstored: every row buffered before the flush is durable
    stored_all: bool


@dataclass
class SinkStats:
    rows_written: dict[str, int] = field(default_factory=dict)
    inserts: int = 0
    insert_errors: int = 0
    #: failed attempts since the last one that succeeded (0: the store is writable)
    consecutive_failures: int = 0
    skipped_replayed: int = 0
    rejected_rows: int = 0
    last_error: str = ""
    last_flush_s: float = 0.0


class ClickHouseSink:
    def __init__(self, store: Store, *, max_rows: int = 200_000, max_age_s: float = 1.0,
                 backlog_max_age_s: float | None = None, max_buffered_rows: int = 2_000_000,
                 retry_max_s: float = 2.0, on_rejected: OnRejected | None = None) -> None:
        self.store = store
        #: Called (sync or async) with (table, row, reason) for a row the store refuses for its
        #: content; the pipeline sends it to the dead-letter topic. It is not retried.
        self.on_rejected = on_rejected
        self.max_rows = max_rows
        self.max_age_s = max_age_s
        #: how long rows may wait while the newest of them is older than this (a backlog); at least max_age_s
        self.backlog_max_age_s = max(max_age_s, backlog_max_age_s if backlog_max_age_s is not None else max_age_s)
        self.max_buffered_rows = max_buffered_rows
        self.retry_max_s = retry_max_s
        self.specs: dict[str, TableSpec] = dict(CORE_TABLES)
        self._converters = {name: spec.converter() for name, spec in self.specs.items()}
        self._buffers: dict[str, _Buffer] = {}
        #: sealed batches not yet stored, oldest first
        self._queue: deque[_Batch] = deque()
        self._oldest: float | None = None
        #: newest event time (epoch s) of the rows buffered, among those added with one
        self._newest_event: float | None = None
        self._retry_at = 0.0
        self._retry_delay = 0.0
        self._stored_upto: dict[tuple[str, int], int] = {}
        self._resume = ResumePoints(store)
        self._last_windows: dict[str, int] | None = None
        self._flush_lock = asyncio.Lock()
        self.stats = SinkStats()

    # -- what is already stored ------------------------------------------------------------
    def stored_upto(self, table: str, partition: int) -> int:
        """Highest source offset of ``partition`` stored (or queued to be) in ``table`` (-1 if none)."""
        key = (table, partition)
        hit = self._stored_upto.get(key)
        if hit is None:
            hit = self._resume.stored_upto(table, self.specs[table].source_columns, partition)  # type: ignore[arg-type]
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
            offset: int | None = None, event_ts: float | None = None) -> None:
        """Buffer row tuples of ``table``; ``event_ts``, the newest event time among them, lets a
        backlog's rows wait for a larger insert (see the module docstring)."""
        if not rows:
            return
        buf = self._buffers.get(table)
        if buf is None:
            spec = self.specs[table]
            buf = self._buffers[table] = _Buffer(spec, spec.new_rows())  # logs: columns (tables.ColumnRows)
        conv = self._converters[table]
        buf.rows.extend(map(conv, rows) if conv else rows)
        if partition is not None and offset is not None:
            self._note_source(buf, table, partition, offset)
        self._note_age(event_ts)

    def add_columns(self, table: str, part: Any, *, partition: int, offset: int,
                    event_ts: float | None = None) -> None:
        """Buffer a column batch of ``table`` from Kafka ``(partition, offset)``: no row is built.

        ``part`` has a length and, as a class, ``concat(parts)`` giving one batch whose
        ``to_arrow()`` is the table's columns (:class:`pipelines.transforms.metric_columns.MetricColumns`).
        A flush inserts all parts buffered for ``table`` as one Arrow table, under the same
        deduplication token rule as rows (table, offset ranges, row count).
        """
        if not len(part):
            return
        buf = self._buffers.get(table)
        if buf is None:
            buf = self._buffers[table] = _Buffer(self.specs[table])
        buf.parts.append(part)
        buf.part_rows += len(part)
        self._note_source(buf, table, partition, offset)
        self._note_age(event_ts)

    def _note_age(self, event_ts: float | None) -> None:
        if self._oldest is None:
            self._oldest = time.monotonic()
        if event_ts is not None and (self._newest_event is None or event_ts > self._newest_event):
            self._newest_event = event_ts

    def _note_source(self, buf: _Buffer, table: str, partition: int, offset: int) -> None:
        rng = buf.ranges.get(partition)
        if rng is None:
            buf.ranges[partition] = [offset, offset]
        else:
            rng[0], rng[1] = min(rng[0], offset), max(rng[1], offset)
        if buf.spec.source_columns:
            key = (table, partition)
            if self._stored_upto.get(key, -1) < offset:
                self._stored_upto[key] = offset

    def buffered_rows(self) -> int:
        """Rows not yet stored: buffered, and sealed in batches waiting for the store."""
        return sum(len(b.rows) + b.part_rows for b in self._buffers.values()) + sum(
            len(b.rows) - (b.next_row or 0) for b in self._queue)

    def failing(self) -> bool:
        """True while the last insert attempt failed and its batch waits for a retry."""
        return self.stats.consecutive_failures > 0

    def retry_in(self) -> float:
        """Seconds until a waiting batch may be retried (0 when nothing waits)."""
        return max(0.0, self._retry_at - time.monotonic()) if self._queue else 0.0

    def max_age_now(self) -> float:
        """How long the rows buffered now may wait: ``backlog_max_age_s`` when the newest of them is already
        older than that (holding it as long again at most doubles its age), else ``max_age_s``."""
        newest = self._newest_event
        if newest is not None and time.time() - newest > self.backlog_max_age_s:
            return self.backlog_max_age_s
        return self.max_age_s

    def due(self) -> bool:
        if self._queue:
            return time.monotonic() >= self._retry_at
        if self._oldest is None:
            return False
        return time.monotonic() - self._oldest >= self.max_age_now() or self.buffered_rows() >= self.max_rows

    def overloaded(self) -> bool:
        return self.buffered_rows() >= self.max_buffered_rows

    # -- writing ---------------------------------------------------------------------------
    @staticmethod
    def dedup_token(table: str, ranges: dict[int, list[int]], rows: int) -> str | None:
        if not ranges:
            return None
        desc = table + ";" + ";".join(f"{p}:{a}-{b}" for p, (a, b) in sorted(ranges.items())) + f";{rows}"
        return hashlib.sha1(desc.encode()).hexdigest()

    def _seal(self) -> None:
        for table, buf in self._buffers.items():
            if buf.rows:
                # the resume point goes with the last batch of the buffer: it vouches for every row of it
                self._queue.append(_Batch(table, buf.spec, buf.rows, self.dedup_token(table, buf.ranges, len(buf.rows)),
                                          ranges={} if buf.parts else buf.ranges))
            if buf.parts:  # made into one Arrow table by the insert's thread, not on the event loop
                token = self.dedup_token(table, buf.ranges, buf.part_rows)
                self._queue.append(_Batch(table, buf.spec, _ColumnParts(buf.parts), token and f"{token}:arrow",
                                          arrow=True, ranges=buf.ranges))
        self._buffers, self._oldest, self._newest_event = {}, None, None

    async def flush(self) -> FlushResult:
        """Seal what is buffered and write every waiting batch, oldest first.

        Stops at the first recoverable failure: that batch and those after it
        stay queued for the next flush, which waits for the backoff to pass.
        """
        async with self._flush_lock:
            self._seal()
            written = 0
            t0 = time.monotonic()
            if self._queue and t0 < self._retry_at:
                return FlushResult(0, False)
            while self._queue:
                batch = self._queue[0]
                try:
                    written += await self._write(batch)
                except Exception as e:  # noqa: BLE001 - recoverable by elimination: permanent ones are handled inside
                    self._failed(batch.table, e)
                    return FlushResult(written, False)
                self._queue.popleft()
            self.stats.consecutive_failures, self._retry_delay, self._retry_at = 0, 0.0, 0.0
            self.stats.last_flush_s = time.monotonic() - t0
            return FlushResult(written, True)

    async def _write(self, batch: _Batch) -> int:
        loop = asyncio.get_running_loop()
        timed = telemetry.on_cpu_clock  # the insert thread's CPU, per stage, on /metrics
        if isinstance(batch.rows, _ColumnParts):
            batch.rows = await loop.run_in_executor(None, timed, "arrow", batch.rows.to_arrow)
        if batch.next_row is None:
            try:
                if batch.arrow:
                    await loop.run_in_executor(None, timed, "insert", self.store.insert_arrow, batch.table,
                                               batch.rows, batch.token)
                else:
                    await loop.run_in_executor(None, timed, "insert", self.store.insert, batch.table, batch.rows,
                                               batch.spec.columns, batch.token)
            except Exception as e:
                if not is_permanent(e):
                    raise
                # The rows themselves are refused: retrying the same batch would wedge the sink
                # forever, so store row by row and set the refused ones aside.
                log.warning("insert into %s refused (%s); storing its %d rows one by one",
                            batch.table, e, len(batch.rows))
                batch.next_row = 0
        if batch.next_row is not None:
            await self._quarantine(batch)
        if batch.spec.source_columns and batch.ranges:
            await self._record_resume_points(batch)
        stored = len(batch.rows) - batch.rejected
        self.stats.inserts += 1
        self.stats.rows_written[batch.table] = self.stats.rows_written.get(batch.table, 0) + stored
        telemetry.ROWS_WRITTEN.labels(batch.table).inc(stored)
        return stored

    async def _record_resume_points(self, batch: _Batch) -> None:
        """Best effort: a point that fails to land lags, and the next reader scans the rows above it."""
        try:
            await asyncio.get_running_loop().run_in_executor(None, self._resume.record, batch.table, batch.ranges)
        except Exception as e:  # noqa: BLE001 - the rows are stored; only the shortcut to them is late
            log.warning("resume point for %s not recorded (%s); a replay scans the rows above the last one",
                        batch.table, first_line(e, 200))

    async def _quarantine(self, batch: _Batch) -> None:
        """Write ``batch`` row by row from ``next_row``; progress survives a recoverable failure."""
        loop = asyncio.get_running_loop()
        columns = batch.spec.columns
        while batch.next_row is not None and batch.next_row < len(batch.rows):
            i = batch.next_row
            token = f"{batch.token}:{i}" if batch.token else None
            try:
                if batch.arrow:
                    row = batch.rows.slice(i, 1)
                    await loop.run_in_executor(None, self.store.insert_arrow, batch.table, row, token)
                else:
                    row = batch.rows[i]
                    await loop.run_in_executor(None, self.store.insert, batch.table, [row], columns, token)
            except Exception as e:
                if not is_permanent(e):
                    raise  # the connection, not the row: resume at this row next time
                batch.rejected += 1
                if batch.arrow:
                    row = tuple(row.to_pylist()[0].values())
                await self._reject(batch.table, row, str(e) or type(e).__name__)
            batch.next_row = i + 1

    async def _reject(self, table: str, row: Any, reason: str) -> None:
        self.stats.rejected_rows += 1
        telemetry.ROWS_DROPPED.labels(table, "rejected").inc()
        log.error("row for %s rejected (%s): %r", table, reason, row)
        if self.on_rejected is not None:
            try:
                res = self.on_rejected(table, row, reason)
                if inspect.isawaitable(res):
                    await res
            except Exception:  # the row is counted as dropped either way; never wedge the batch on it
                log.exception("could not dead-letter a row refused by %s", table)

    def _failed(self, table: str, error: BaseException) -> None:
        self.stats.insert_errors += 1
        self.stats.consecutive_failures += 1
        self.stats.last_error = f"{table}: {type(error).__name__}: {error}"[:500]
        telemetry.INSERT_ERRORS.labels(table, "recoverable").inc()
        self._retry_delay = min(max(self._retry_delay * 2, 0.1), self.retry_max_s)
        self._retry_at = time.monotonic() + self._retry_delay
        log.warning("insert into %s failed (%s); %d rows wait, next try in %.1fs",
                    table, error, self.buffered_rows(), self._retry_delay)

    def snapshot(self) -> dict[str, Any]:
        return {"buffered_rows": self.buffered_rows(), "max_buffered_rows": self.max_buffered_rows,
                "waiting_batches": len(self._queue), "rows_written": dict(self.stats.rows_written),
                "inserts": self.stats.inserts, "insert_errors": self.stats.insert_errors,
                "consecutive_failures": self.stats.consecutive_failures,
                "rejected_rows": self.stats.rejected_rows,
                "skipped_replayed": self.stats.skipped_replayed, "last_error": self.stats.last_error}
