"""The processor loop without a broker: a message Faust delivers twice is aggregated once.

Faust may hand a worker a message it already handled (after it seeks a partition back to its
committed offset, e.g. once table recovery finishes). Raw rows were protected by their resume
point; the 1-minute windows were not, so a window counted the message twice (issue 9, finding 5).
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from dataclasses import dataclass

import orjson

from pipelines.commit import AckLedger
from pipelines.context import PipelineContext
from pipelines.processors.loop import processor_loop
from pipelines.processors.metrics import MetricsProcessor
from pipelines.settings import PipelineSettings
from pipelines.sinks.clickhouse import ClickHouseSink
from pipelines.transforms.aggregate_columns import ColumnarWindows
from pipelines.transforms.metric_columns import decode_metric_messages
from pipelines.transforms.rules import RuleSet

TOPIC = "gpuwatch.metrics.v1"


@dataclass
class Message:
    topic: str
    partition: int
    offset: int


@dataclass
class Event:
    message: Message
    key: bytes
    value: bytes

    def ack(self) -> None:
        pass


class Stream:
    def __init__(self, events: list[Event]) -> None:
        self._events = events

    def noack(self) -> "Stream":
        return self

    async def events(self):
        for e in self._events:
            yield e


def batch(ts: float, value: float, node: str = "n1") -> bytes:
    return orjson.dumps({"v": 1, "kind": "metrics", "node": node, "ts": ts,
                         "samples": [{"gpu": 0, "uuid": "GPU-0", "metric": "gpu_temp_c", "value": value}]})


def metrics_context(store, max_rows: int = 200_000) -> PipelineContext:
    """A worker's context on ``store``: a real sink, columnar windows and the built-in rules; sends go nowhere."""
    sink = ClickHouseSink(store, max_age_s=3600, max_rows=max_rows)

    async def send(key, value):
        pass

    return PipelineContext(settings=PipelineSettings(_env_file=None), sink=sink,
                           windows=ColumnarWindows(60, 0, 10, written_upto=sink.last_window),
                           rules=RuleSet.from_file(None, database=store.database), ledger=AckLedger(_ack),
                           send_alert=send, send_dead_letter=send, metrics_topic=TOPIC)


def test_a_message_delivered_twice_is_counted_once_in_its_window(store):
    ctx = metrics_context(store)
    sink, windows = ctx.sink, ctx.windows
    start = (time.time() // 60 - 10) * 60
    events = [Event(Message(TOPIC, 0, off), b"n1", batch(start + off, 50.0 + off)) for off in range(5)]
    # offsets 3 and 4 are delivered again, as after a seek back to the committed offset 3
    redelivered = events + events[3:]
    asyncio.run(processor_loop(ctx, MetricsProcessor(ctx))(Stream(redelivered)))
    rows = windows.close_idle(math.inf)
    assert [(r.metric, r.count, r.max) for r in rows] == [("gpu_temp_c", 5, 54.0)]
    assert sink.buffered_rows() == 5  # raw rows: once each


async def _ack(event) -> None:
    event.ack()


def test_a_revoked_partition_takes_its_nodes_state_with_it(store):
    """After a rebalance the old owner neither judges nor pages nodes it no longer reads (finding 8)."""
    from pipelines.decide import Condition
    from pipelines.detect.node_absence import NodeAbsence

    ctx = metrics_context(store)
    sink = ctx.sink
    absence = NodeAbsence()
    now = time.time()
    for node, partition in (("kept", 0), ("moved", 1)):
        ctx.node_partition[node] = partition
        cols, _ = decode_metric_messages([(batch(now, 50.0, node), partition, 7)])
        ctx.windows.add(cols)
        asyncio.run(ctx.decide(node, now, [Condition("GpuHot", {"node": node}, ts=now, node=node)], "metrics"))
        absence.heartbeat(node, now, interval_s=1.0)
        ctx.read_offsets[(TOPIC, partition)] = 7
    assert set(ctx.books) == {"kept", "moved"}

    for node in ctx.forget_partitions({(TOPIC, 1), ("gpuwatch.heartbeats.v1", 1)}):
        absence.forget(node)

    assert set(ctx.books) == {"kept"} and set(ctx.node_partition) == {"kept"}
    assert ctx.windows.floor(1) is None and ctx.windows.floor(0) == 7
    assert (TOPIC, 1) not in ctx.read_offsets and (TOPIC, 0) in ctx.read_offsets
    # the moved node goes quiet here (its heartbeats now go to another worker): nobody pages it here
    absence.heartbeat("kept", now + 120, interval_s=1.0)
    assert [c.labels["node"] for c in absence.check(now + 120).conditions] == []


def test_absence_state_is_checkpointed_and_restored_for_the_partitions_a_worker_owns():
    """A node that went silent just before a restart (or a move) is still paged by its new owner."""
    from pipelines.checkpoints import AbsenceCheckpoints
    from pipelines.detect.node_absence import NodeAbsence

    table: dict = {}  # stands in for the changelog-backed Faust table
    now = time.time()
    before = AbsenceCheckpoints(table, NodeAbsence())
    for t in range(0, 30, 5):
        before.heartbeat("silent", now - 100 + t, 5.0, partition=1)  # last heard 75 s ago
        before.heartbeat("elsewhere", now - 100 + t, 5.0, partition=2)
    assert set(table) == {"silent", "elsewhere"}

    after = NodeAbsence()  # the restarted worker, owning partition 1 only
    assert AbsenceCheckpoints(table, after).restore({1}, now) == ["silent"]
    assert [c.labels["node"] for c in after.check(now).conditions] == ["silent"]


def test_a_jobs_incident_book_follows_its_partition():
    """A job's open incident is restored by its next owner, and dropped by the one it left (finding 8)."""
    from pipelines.checkpoints import freeze, thaw
    from pipelines.decide import Condition, IncidentBook
    from pipelines.detect.config import DetectionConfig
    from pipelines.processors.job_peers import JobPeersProcessor

    table: dict = {}
    open_book = IncidentBook()
    open_book.observe("node-1", 100.0, [Condition("NodeSlowerThanJob", {"job": "j1", "node": "node-1"}, ts=100.0,
                                                  node="node-1", channel="job_peers")], channel="job_peers")
    assert open_book.firing()
    table["j1"] = freeze(open_book)

    def summary(node: str, ts: float) -> bytes:
        return orjson.dumps({"job": "j1", "node": node, "ts": ts, "values": {"job_tokens_per_s": 100.0}})

    async def send(key, value):
        pass

    ctx = PipelineContext(settings=PipelineSettings(_env_file=None), sink=None, windows=None, rules=None,
                          ledger=None, send_alert=send, send_dead_letter=send)
    new_owner = JobPeersProcessor(ctx, DetectionConfig.default(), restore_book=lambda job: thaw(table.get(job)),
                                  save_book=lambda job, book: table.__setitem__(job, freeze(book)))
    asyncio.run(new_owner.handle("job-summaries", 4, 0, b"j1", summary("node-1", 101.0)))
    assert new_owner.jobs["j1"][1].firing() == open_book.firing()
    new_owner.forget_partitions({4})
    assert new_owner.jobs == {}


class _AckedEvent(Event):
    def ack(self) -> None:
        ACKED.append(self.message.offset)


ACKED: list[int] = []


def test_an_event_whose_partition_is_revoked_while_it_is_handled_leaves_nothing_behind(store):
    """Revoked mid-`handle`: not acked, no rows, no state; read again from the commit, it counts once."""
    ACKED.clear()
    ctx = metrics_context(store)
    sink, windows = ctx.sink, ctx.windows
    metrics = MetricsProcessor(ctx)

    class RevokedMidway:
        """Awaits inside handle (as a send or a store retry does) while the rebalance revokes partition 0."""

        def __init__(self) -> None:
            self.revoke = True

        async def handle(self, topic, partition, offset, key, value):
            if self.revoke:
                self.revoke = False
                await asyncio.sleep(0)
                ctx.forget_partitions({(TOPIC, 0)})  # what app.py's on_revoked does
            await metrics.handle(topic, partition, offset, key, value)

    start = (time.time() // 60 - 10) * 60
    in_flight = _AckedEvent(Message(TOPIC, 0, 3), b"n1", batch(start + 3, 53.0))
    asyncio.run(processor_loop(ctx, RevokedMidway())(Stream([in_flight])))

    assert ctx.ledger.pending() == 0 and sink.buffered_rows() == 0
    assert (TOPIC, 0) not in ctx.read_offsets and ctx.windows.floor(0) is None
    assert "n1" not in ctx.node_partition and "n1" not in ctx.latest_rows

    # the partition comes back: read again from the commit (offset 3), then the next message
    again = [_AckedEvent(Message(TOPIC, 0, off), b"n1", batch(start + off, 50.0 + off)) for off in (3, 4)]
    asyncio.run(processor_loop(ctx, metrics)(Stream(again)))
    assert sink.buffered_rows() == 2  # offsets 3 and 4 once each
    assert ctx.ledger.pending() == 2
    rows = windows.close_idle(math.inf)
    assert [(r.metric, r.count) for r in rows] == [("gpu_temp_c", 2)]
    assert ACKED == []


def test_a_message_waiting_for_the_store_stops_waiting_once_its_partition_is_revoked(store):
    """A revoked partition's message is not retried for the whole outage: its next owner has it."""
    from pipelines.store import StoreError

    ACKED.clear()
    ctx = metrics_context(store)
    sink = ctx.sink
    attempts = []

    class StoreDown:
        async def handle(self, topic, partition, offset, key, value):
            attempts.append(offset)
            ctx.sink.add("metrics_raw", [(time.time(), "n1", 0, "GPU-0", "gpu_temp_c", 50.0, "", {}, 0, offset)],
                         partition=0, offset=offset)  # an attempt's rows: dropped, never stored
            if len(attempts) == 2:
                ctx.forget_partitions({(TOPIC, 0)})  # the rebalance, while the message waits for the store
            raise StoreError("store down")

    event = _AckedEvent(Message(TOPIC, 0, 3), b"n1", batch(time.time(), 50.0))
    asyncio.run(asyncio.wait_for(processor_loop(ctx, StoreDown())(Stream([event])), timeout=60))
    assert len(attempts) == 2 and sink.buffered_rows() == 0 and ctx.ledger.pending() == 0 and ACKED == []


class SlowInserts:
    """``store``, but every Arrow insert waits until the test opens the gate (an insert that takes long)."""

    def __init__(self, store) -> None:
        self._store, self.gate, self.started = store, threading.Event(), threading.Event()

    def insert_arrow(self, *args, **kwargs):
        self.started.set()
        self.gate.wait(60)
        return self._store.insert_arrow(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._store, name)


def test_batches_are_handled_while_an_insert_runs(store):
    """A processor does not stop judging while its rows are inserted (issue 11: the insert held every breach)."""
    slow = SlowInserts(store)
    ctx = metrics_context(slow, max_rows=1)  # due after every batch
    now = time.time()
    events = [Event(Message(TOPIC, p, 0), node.encode(), batch(now, 50.0, node)) for p, node in ((0, "a"), (1, "b"))]

    async def run() -> bool:
        task = asyncio.create_task(processor_loop(ctx, MetricsProcessor(ctx))(Stream(events)))
        try:
            for _ in range(600):  # the first batch's insert cannot end until the gate opens (30 s at most)
                if ctx.read_offsets.get((TOPIC, 1)) == 0 and slow.started.is_set():
                    return True  # the second batch was handled, the insert is still held
                await asyncio.sleep(0.05)
            return False
        finally:
            slow.gate.set()
            await task
            await ctx.flush()

    assert asyncio.run(run()), "the second batch waited for the first one's insert"
    assert store.query(f"SELECT count() FROM {store.database}.metrics_raw").rows[0][0] == 2


def test_a_processor_draining_a_backlog_lets_other_work_run_between_batches(store):
    """A full buffer never suspends the loop by itself: without a yield, a breach or a node event fetched
    meanwhile waited for the whole backlog (issue 11)."""
    ctx = metrics_context(store)
    now = time.time()
    backlog = [Event(Message(TOPIC, 0, off), b"n1", batch(now - 200 + off, 50.0)) for off in range(50)]
    seen_at: list[int | None] = []

    async def other_work() -> None:  # e.g. the events processor with an XID to page
        seen_at.append(ctx.read_offsets.get((TOPIC, 0)))

    async def run() -> None:
        drain = asyncio.create_task(processor_loop(ctx, MetricsProcessor(ctx))(Stream(backlog)))
        await asyncio.sleep(0)  # the drain starts first
        other = asyncio.create_task(other_work())
        await asyncio.gather(drain, other)

    asyncio.run(run())
    assert seen_at and seen_at[0] is not None and seen_at[0] < 49, f"other work ran only at offset {seen_at}"


def test_job_summaries_leave_as_one_message_per_job_not_one_per_batch(store, monkeypatch):
    """Each batch's summary was a Kafka message of its own: as many as metric batches (issue 10)."""
    from pipelines.detect.observation import JobSummary, Observation
    from pipelines.processors import metrics as metrics_module
    from pipelines.processors.job_peers import decode_summaries, encode_summaries

    monkeypatch.setattr(metrics_module, "JOB_SUMMARY_SEND_S", 1e9)  # only an explicit send (the flush timer's)

    class JobDetectors:
        def observe_columns(self, node, ts, *columns):
            return Observation(job_summaries=[JobSummary(f"job-{node[-1]}", node, ts, {"job_tokens_per_s": 1.0})])

    sent: list[tuple[str, bytes]] = []

    async def send_job_summary(job, summaries):
        sent.append((job, encode_summaries(summaries)))

    ctx = metrics_context(store)
    metrics = MetricsProcessor(ctx, detectors=lambda node: JobDetectors(), send_job_summary=send_job_summary)
    start = time.time() - 60
    events = [Event(Message(TOPIC, 0, off), node.encode(), batch(start + off, 50.0, node=node))
              for off in range(10) for node in ("n1", "n2")]
    for i, e in enumerate(events):
        e.message.offset = i
    asyncio.run(processor_loop(ctx, metrics)(Stream(events)))
    assert sent == []
    asyncio.run(metrics.send_job_summaries())
    assert sorted(job for job, _ in sent) == ["job-1", "job-2"]
    for job, value in sent:
        summaries = decode_summaries(value)
        assert [s.ts for s in summaries] == [start + off for off in range(10)] and {s.job for s in summaries} == {job}


def test_a_job_peers_message_of_several_summaries_is_read_as_each():
    from pipelines.detect.config import DetectionConfig
    from pipelines.detect.observation import JobSummary
    from pipelines.processors.job_peers import JobPeersProcessor, decode_summaries, encode_summaries

    async def send(key, value):
        pass

    ctx = PipelineContext(settings=PipelineSettings(_env_file=None), sink=None, windows=None, rules=None,
                          ledger=None, send_alert=send, send_dead_letter=send)
    peers = JobPeersProcessor(ctx, DetectionConfig.default())
    value = encode_summaries([JobSummary("j1", n, 100.0 + t, {"job_tokens_per_s": 1.0}) for t in range(3)
                              for n in ("a", "b")])
    asyncio.run(peers.handle("job-summaries", 1, 0, b"j1", value))
    clock = peers.jobs["j1"][2]
    assert {n: ts for n, (ts, _) in clock._latest.items()} == {"a": 102.0, "b": 102.0}
    # a message written by the previous version (one summary, not a list) still reads
    assert [s.node for s in decode_summaries(orjson.dumps({"job": "j1", "node": "a", "ts": 1.0,
                                                           "values": {}}))] == ["a"]


def test_a_failed_job_summary_send_keeps_them_and_sends_the_other_jobs(store, caplog):
    from pipelines.detect.observation import JobSummary

    calls: list[tuple[str, int]] = []
    refuse = {"job-a"}

    async def send_job_summary(job, summaries):
        if job in refuse:
            raise RuntimeError("KafkaTimeoutError: no leader for the partition")
        calls.append((job, len(summaries)))

    metrics = MetricsProcessor(metrics_context(store), send_job_summary=send_job_summary)
    metrics._summaries = {job: [JobSummary(job, "n1", float(t), {}) for t in range(3)] for job in ("job-a", "job-b")}
    asyncio.run(metrics.send_job_summaries())  # never raises: the flush timer and the processor call it
    assert calls == [("job-b", 3)] and [s.ts for s in metrics._summaries["job-a"]] == [0.0, 1.0, 2.0]
    assert "job summaries of job-a not sent" in caplog.text
    refuse.clear()
    asyncio.run(metrics.send_job_summaries())
    assert calls == [("job-b", 3), ("job-a", 3)] and metrics._summaries == {}
