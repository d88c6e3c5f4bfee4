"""The state one pipeline worker shares between its processors.

Processors are small functions over a Kafka event; what they share (the sink,
the windows, the rules, the incident books, the ledger of unacked events and
the outbound topics) lives here, created once by ``app.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import orjson

from pipelines import telemetry
from pipelines.commit import AckLedger, flush_then_ack
from pipelines.decide import Condition, IncidentBook, readings
from pipelines.decide.faults import FaultIncidents
from pipelines.settings import PipelineSettings
from pipelines.staging import StagingSink
from pipelines.sinks.clickhouse import ClickHouseSink, FlushResult
from pipelines.sinks.tables import ALERTS, FEATURES_1M
from pipelines.transforms.aggregate_columns import ColumnarWindows
from pipelines.transforms.rules import RuleSet
from schemas.alerts import AlertEvent
from schemas.codec import encode
from schemas.deadletter import DeadLetter

log = logging.getLogger("gpuwatch.pipeline")

Send = Callable[[bytes, bytes], Awaitable[Any]]


def flush_wanted(sink: ClickHouseSink, ledger: AckLedger) -> bool:
    """Whether the flush timer should flush now: the sink's rows are due, or acks wait and no row does.

    Acks wait behind the rows they vouch for anyway, so waiting acks alone must not force an insert of
    rows that are not due: that was an insert per table on every timer tick (two a second) whatever the
    flush interval, each one a part for chDB to merge (issue 10).
    """
    return sink.due() or (ledger.pending() > 0 and sink.buffered_rows() == 0)


@dataclass
class PipelineContext:
    settings: PipelineSettings
    sink: ClickHouseSink
    windows: ColumnarWindows
    rules: RuleSet
    ledger: AckLedger
    send_alert: Send
    send_dead_letter: Send
    #: node -> incident book; mirrored into a changelog table by the processors
    books: dict[str, IncidentBook] = field(default_factory=dict)
    #: nodes whose book changed since it was last written to the changelog table
    dirty_books: set[str] = field(default_factory=set)
    metrics_topic: str = ""
    #: node -> partition of the node-keyed topics (metrics, events) it arrives on
    node_partition: dict[str, int] = field(default_factory=dict)
    #: (node, gpu index) -> GPU model, from heartbeat inventories
    gpu_models: dict[tuple[str, int], str] = field(default_factory=dict)
    #: Finds the log templates that explain a firing alert (pipelines.logs.LogExplainer)
    explainer: Any = None
    #: (topic, partition) -> offset of the last message handled (skips redeliveries; consumer lag)
    read_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    #: Judges the worker's health now (pipelines.health.report, bound by app.py)
    health: Callable[[], Any] | None = None
    #: event time (epoch s) of the newest metric batch handled: how far it trails the clock says
    #: whether the worker is live or catching up on a backlog (:meth:`catching_up`)
    newest_event_ts: float | None = None
    _late_counted: int = 0
    #: incidents whose log evidence was looked up (insertion-ordered, bounded)
    _explained: dict[str, None] = field(default_factory=dict)
    #: node -> the rows of its latest metric batch: the readings a page shows (peers now, values at resolution)
    latest_rows: dict[str, list] = field(default_factory=dict)
    #: lookups in flight (referenced, so the loop does not drop them)
    _explaining: set = field(default_factory=set)
    #: the flush a processor started without waiting for it (:meth:`flush_soon`)
    _flushing: asyncio.Task | None = None

    def __post_init__(self) -> None:
        # an event's rows wait beside the sink until it is known to still be ours (pipelines/staging.py)
        if not isinstance(self.sink, StagingSink):
            self.sink = StagingSink(self.sink)  # type: ignore[assignment]

    # -- dead letters --------------------------------------------------------------------------
    async def dead_letter(self, topic: str, partition: int, offset: int, key: Any, raw: Any, reason: str,
                          stage: str = "validate", count: int = 1) -> None:
        """Send a refused message (or the part of it ``reason`` names) to the dead-letter topic.

        ``count`` is how many records the letter stands for (records refused inside one message)."""
        raw_bytes = raw if isinstance(raw, (bytes, bytearray)) else (b"" if raw is None else str(raw).encode())
        key_s = key.decode(errors="replace") if isinstance(key, (bytes, bytearray)) else str(key or "")
        letter = DeadLetter(ts=time.time(), topic=topic, partition=partition, offset=offset, key=key_s[:256],
                            reason=reason[:4096], stage=stage, payload_b64=DeadLetter.encode_payload(bytes(raw_bytes)),
                            payload_bytes=len(raw_bytes))
        await self.send_dead_letter(f"{topic}:{partition}".encode(), encode(letter))
        telemetry.DEAD_LETTERED.labels(topic, stage).inc(count)

    async def dead_letter_row(self, table: str, row: Any, reason: str) -> None:
        """A row the store refused for its content (the sink's ``on_rejected``): kept, with the reason."""
        try:
            payload = orjson.dumps(row, default=repr)
        except TypeError:  # e.g. an integer over 64 bits
            payload = repr(row).encode()
        await self.dead_letter(f"clickhouse:{table}", -1, -1, table, payload,
                               f"row refused by ClickHouse table {table}: {reason}", stage="store")

    # -- decisions -----------------------------------------------------------------------------
    def book(self, node: str, restore: Callable[[str], IncidentBook | None] | None = None) -> IncidentBook:
        book = self.books.get(node)
        if book is None:
            book = (restore(node) if restore else None) or IncidentBook()
            if book.faults is None:  # one incident per fault (also for a book checkpointed before that)
                book.faults = FaultIncidents()
            self.books[node] = book
        return book

    async def decide(self, node: str, ts: float, conditions: list[Condition], channel: str,
                     restore: Callable[[str], IncidentBook | None] | None = None,
                     clears: bool = True) -> list[AlertEvent]:
        book = self.book(node, restore)
        before = (len(book.incidents), len(book.firing()))
        events = book.observe(node, ts, conditions, channel=channel, clears=clears)
        if events or before != (len(book.incidents), len(book.firing())):
            self.dirty_books.add(node)
        for ev in events:
            await self.publish_alert(ev, booked=True)
        return events

    async def sweep(self, node: str, ts: float, channel: str) -> None:
        """Resolve ``channel`` incidents of ``node`` whose keep-firing time has run out."""
        book = self.books.get(node)
        if book is None:
            return
        events = book.sweep(ts, channel)
        if events:
            self.dirty_books.add(node)
        for ev in events:
            await self.publish_alert(ev, booked=True)

    async def publish_alert(self, ev: AlertEvent, *, booked: bool = False) -> None:
        """Publish at once with what is in memory; the log evidence follows as an update.

        The log lookup is a ClickHouse query that shares the store's lock with the inserts; a
        page must not wait for it, so it runs afterwards, off the alert path (:meth:`_explain_later`).
        """
        ev = self._with_gpu_model(ev)
        rows = self.latest_rows.get(ev.labels.get("node", ""), [])
        ev = readings.with_peers(ev, rows) if ev.status == "firing" else readings.at_resolution(ev, rows)
        await self._send(ev)
        if ev.status == "firing" and self.explainer is not None and not ev.source.startswith("log"):
            incident = f"{ev.fingerprint}:{ev.starts_at:.3f}"
            if ev.labels.get("node") and incident not in self._explained:
                self._explained[incident] = None
                while len(self._explained) > 10_000:
                    del self._explained[next(iter(self._explained))]
                task = asyncio.get_running_loop().create_task(self._explain_later(ev, booked))
                self._explaining.add(task)
                task.add_done_callback(self._explaining.discard)

    async def _send(self, ev: AlertEvent) -> None:
        await self.send_alert(ev.fingerprint.encode(), encode(ev))
        labels = ev.labels
        gpu = int(labels["gpu"]) if labels.get("gpu", "").lstrip("-").isdigit() else -1
        self.sink.add(ALERTS.name, [(
            ev.event_ts, ev.fingerprint, ev.status, ev.alertname, ev.severity, labels.get("node", ""), gpu,
            ev.source, ev.starts_at, ev.ends_at, dict(labels), dict(ev.annotations),
            orjson.dumps([e.model_dump(exclude_none=True) for e in ev.evidence]).decode(), ev.evidence_query,
        )])
        telemetry.ALERTS.labels(ev.status).inc()
        log.info("alert %s %s %s", ev.status, ev.alertname, ev.fingerprint)

    def _with_gpu_model(self, ev: AlertEvent) -> AlertEvent:
        """The GPU model from the heartbeats' inventory (a label, not part of the fingerprint)."""
        labels = ev.labels
        gpu = labels.get("gpu", "")
        model = self.gpu_models.get((labels.get("node", ""), int(gpu))) if gpu.isdigit() else None
        if model and "gpu_model" not in labels:
            return ev.model_copy(update={"labels": {**labels, "gpu_model": model}})
        return ev

    async def _explain_later(self, ev: AlertEvent, booked: bool) -> None:
        """The log templates and the GPU's series around the onset, as an update of the incident if
        it is still open. Waits one flush first, so the rows of the onset are stored.

        ``booked``: the incident lives in its node's book (not a job's), which builds the update."""
        node, labels = ev.labels.get("node", ""), ev.labels
        max_age = getattr(self.sink, "max_age_now", None)  # longer while catching up on a backlog
        await asyncio.sleep((max_age() if max_age else self.settings.flush_interval_s) * 1.5)
        store = getattr(self.sink, "store", None)
        gpu, metrics = labels.get("gpu", ""), readings.gpu_metrics(ev)

        def lookup() -> tuple[list, str, str]:
            evidence, query = self.explainer.explain(node=node, job=labels.get("job"), ts=ev.starts_at)
            series = ""
            if store is not None and gpu.isdigit() and metrics:
                sql = readings.series_query(store.database, node, gpu, metrics[0], ev.starts_at - 60, ev.starts_at + 30)
                series = readings.series_line(metrics[0], [(float(t), float(v)) for t, v in store.query(sql).rows],
                                              ev.starts_at)
            return evidence, query, series

        loop = asyncio.get_running_loop()
        try:
            evidence, query, series = await asyncio.wait_for(loop.run_in_executor(None, lookup), 30.0)
        except Exception:  # no logs is no reason to fail anything
            log.debug("log explanation failed for %s", ev.fingerprint, exc_info=True)
            return
        annotations = {**({"logs_query": query} if evidence else {}), **({"series": series} if series else {})}
        if not annotations:
            return
        book = self.books.get(node)
        if booked:
            update = book.faults.add_evidence(ev.fingerprint, evidence, annotations) \
                if book is not None and book.faults is not None else None
            if update is None:
                return  # the incident ended meanwhile
            self.dirty_books.add(node)
        else:  # an alert decided outside the node books (job peers)
            update = ev.model_copy(update={"evidence": (list(ev.evidence) + evidence)[:32],
                                           "annotations": {**ev.annotations, **annotations},
                                           "event_ts": ev.event_ts + 0.001})
        await self._send(readings.with_peers(self._with_gpu_model(update), self.latest_rows.get(node, [])))

    def catching_up(self) -> bool:
        """True while the newest metric batch handled is older than ``flush_backlog_interval_s``: the worker
        works through a backlog (after a restart, an outage, a partition move), so nobody waits on its newest
        row at the second scale and fetches can be sized for throughput (:class:`pipelines.kafka_fetch.FetchMode`)."""
        newest = self.newest_event_ts
        return newest is not None and time.time() - newest > self.settings.flush_backlog_interval_s

    # -- flushing ------------------------------------------------------------------------------
    async def flush(self) -> FlushResult:
        """Store what is buffered, then ack what that made durable (flush before commit).

        Never raises for a failing store and never waits on one: the rows stay in
        the sink, their offsets unacked, and the next flush retries after a backoff.
        """
        closed = self.windows.close_idle()
        if closed:
            self.sink.add(FEATURES_1M.name, [r.as_tuple() for r in closed])
        metrics_topic = self.metrics_topic
        result = await flush_then_ack(self.sink, self.ledger, lambda topic, partition: (
            self.windows.floor(partition) if topic == metrics_topic else None))
        late = self.windows.late_samples
        if late > self._late_counted:
            telemetry.LATE_SAMPLES.inc(late - self._late_counted)
            self._late_counted = late
        return result

    def flush_soon(self) -> None:
        """Start a flush unless one is running, and do not wait for it.

        A processor that awaited its flush stopped judging while the insert ran:
        at full ingest a flush every second held a breach on a quiet node for
        the seal and the insert (issue 11: the pipeline stage's p50 went from
        31 ms idle to 101 ms, and its tail with it). The insert runs in a
        thread and the ack ledger's mark is taken before it, so batches handled
        meanwhile are simply flushed and acked by the next one; the sink's
        bound (backpressure) still stops consumption when inserts fall behind.
        """
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._flush_logged())

    async def _flush_logged(self) -> None:
        try:
            await self.flush()
        except Exception:  # a flush never raises for the store; anything else is a bug to see
            telemetry.PROCESSOR_ERRORS.labels("flush").inc()
            log.exception("background flush failed")

    def forget_partitions(self, revoked: set[tuple[str, int]]) -> list[str]:
        """Drop what this worker kept for partitions it no longer owns; their next owner rebuilds it.

        Node-keyed topics share partition numbers (same key, same partition
        count), so a revoked metrics partition takes its nodes' incident books,
        rule history and node->partition entries with it; the next owner
        restores books from the ``incidents`` changelog. Returns those nodes,
        for the state app.py holds elsewhere (detectors, absence).
        """
        node_partitions = {p for t, p in revoked if t == self.metrics_topic}
        self.sink.forget_partitions(sorted(node_partitions))
        self.ledger.drop_partitions(revoked)
        for tp in revoked:
            self.read_offsets.pop(tp, None)
        for p in node_partitions:
            self.windows.forget_partition(p)
        nodes = [n for n, p in self.node_partition.items() if p in node_partitions]
        for node in nodes:
            self.books.pop(node, None)
            self.latest_rows.pop(node, None)
            self.dirty_books.discard(node)
            self.rules.forget_node(node)
            del self.node_partition[node]
        return nodes

    def discard_revoked_event(self, topic: str, partition: int, node: str | None) -> None:
        """Undo what an event left behind when its partition was revoked while it was handled.

        The revoke dropped the partition's state (:meth:`forget_partitions`); the
        event went on afterwards and may have made some again: its position, the
        sink's resume point, open windows, its node's book, readings, rule history
        and node->partition entry. The next owner re-reads the event from the commit.
        Its rows are dropped by the caller (they were staged) and it is never acked.
        """
        self.read_offsets.pop((topic, partition), None)
        self.sink.forget_partitions([partition])
        if topic == self.metrics_topic:  # only the metrics loop feeds windows, one event at a time
            self.windows.forget_partition(partition)
        if node and self.node_partition.get(node, partition) == partition:
            self.books.pop(node, None)
            self.latest_rows.pop(node, None)
            self.dirty_books.discard(node)
            self.rules.forget_node(node)
            self.node_partition.pop(node, None)

    async def backpressure(self) -> None:
        """Hold the processor while the sink is over its bound (the store is slow or down).

        Consumption pauses here; /healthz says so. Detection of what was already
        consumed is done; it resumes with consumption once the store catches up.
        """
        while self.sink.overloaded():
            await self.flush()
            if self.sink.overloaded():
                await asyncio.sleep(max(0.05, min(self.sink.retry_in(), 1.0)))
