"""The Faust-side logs processor (pipelines/processors/logs.py), without a broker or a store."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import orjson

from pipelines.context import PipelineContext
from pipelines.decide import Condition, IncidentBook
from pipelines.logs import LogProcessor
from pipelines.processors.events import EventsProcessor
from pipelines.processors.logs import LogsProcessor
from pipelines.settings import PipelineSettings


class _Sink:
    """Just enough of ClickHouseSink: remembers rows, nothing stored yet."""

    store = SimpleNamespace(database="gpuwatch")

    def __init__(self) -> None:
        self.rows: dict[str, list] = {}

    def stored_upto(self, table: str, partition: int) -> int:
        return -1

    def add(self, table: str, rows, *, partition=None, offset=None) -> None:
        self.rows.setdefault(table, []).extend(rows)


def test_a_nodes_first_log_batch_after_a_restart_keeps_its_checkpointed_incidents():
    now = time.time()
    checkpointed = IncidentBook()  # before the restart: a metric alert was firing on node-2
    fired = checkpointed.observe("node-2", now - 30, [Condition(
        "GpuTemperatureHigh", {"node": "node-2", "gpu": "1"}, ts=now - 30, node="node-2", channel="metrics")])
    assert [e.status for e in fired] == ["firing"]
    sent = []

    async def send(key: bytes, value: bytes) -> None:
        sent.append(value)

    ctx = PipelineContext(settings=PipelineSettings(_env_file=None), sink=_Sink(), windows=None, rules=None,
                          ledger=None, send_alert=send, send_dead_letter=send)
    restore = {"node-2": checkpointed}.get
    logs = LogsProcessor(ctx, LogProcessor(), EventsProcessor(ctx, restore_book=restore), restore_book=restore)
    batch = {"v": 1, "kind": "logs", "node": "node-2", "records": [{"ts": now, "message": "step 7 loss 2.5"}]}
    asyncio.run(logs.handle("gpuwatch.logs.v1", 0, 0, b"node-2", orjson.dumps(batch)))

    assert ctx.books["node-2"] is checkpointed and checkpointed.firing() == [fired[0].fingerprint]
    assert sent == [] and len(ctx.sink.rows["logs"]) == 1


def test_refused_records_are_sent_to_the_dead_letter_topic_and_drops_are_counted_with_a_reason():
    """Issue 9, finding 11: salvaged-away records were counted as dead-lettered but never sent."""
    from pipelines import telemetry

    letters = []

    async def send_dead_letter(key: bytes, value: bytes) -> None:
        letters.append(orjson.loads(value))

    async def send(key: bytes, value: bytes) -> None:
        pass

    def dropped(reason: str) -> float:
        return telemetry.REGISTRY.get_sample_value("gpuwatch_rows_dropped_total",
                                                   {"table": "logs", "reason": reason}) or 0.0

    ctx = PipelineContext(settings=PipelineSettings(_env_file=None), sink=_Sink(), windows=None, rules=None,
                          ledger=None, send_alert=send, send_dead_letter=send_dead_letter)
    logs = LogsProcessor(ctx, LogProcessor(lines_per_s=1, burst_lines=5), EventsProcessor(ctx))
    now = time.time()
    records = [{"ts": now, "message": f"line {i}"} for i in range(20)] + [{"ts": "yesterday", "message": "bad"}]
    before = dropped("rate_limited")
    asyncio.run(logs.handle("gpuwatch.logs.v1", 0, 9, b"n1",
                            orjson.dumps({"v": 1, "kind": "logs", "node": "n1", "records": records})))
    assert [(d["stage"], d["offset"]) for d in letters] == [("record", 9)]
    assert "1 log records refused" in letters[0]["reason"] and "record 20" in letters[0]["reason"]
    assert dropped("rate_limited") - before == 15


def test_a_critical_log_line_is_stored_as_one_node_event_and_alerts():
    """The event the pattern book validated is recorded as it is (not dumped to a dict and validated again)."""
    sent = []

    async def send(key: bytes, value: bytes) -> None:
        sent.append(orjson.loads(value))

    ctx = PipelineContext(settings=PipelineSettings(_env_file=None), sink=_Sink(), windows=None, rules=None,
                          ledger=None, send_alert=send, send_dead_letter=send)
    logs = LogsProcessor(ctx, LogProcessor(), EventsProcessor(ctx))
    now = time.time()
    records = [{"ts": now, "message": "step 7 loss 2.5", "source": "/var/log/train.log", "labels": {"job": "j1"}},
               {"ts": now, "message": "RuntimeError: CUDA error: an illegal memory access was encountered",
                "source": "/var/log/train.log", "labels": {"job": "j1"}}]
    asyncio.run(logs.handle("gpuwatch.logs.v1", 0, 0, b"n1",
                            orjson.dumps({"v": 1, "kind": "logs", "node": "n1", "records": records})))

    (row,) = ctx.sink.rows["node_events"]
    assert row[1] == "n1" and row[3] == "log" and row[5] == "critical" and "illegal memory access" in row[8]
    assert row[10] == {"job": "j1", "pattern": "cuda_illegal_memory_access", "log_source": "/var/log/train.log"}
    assert [a["labels"]["alertname"] for a in sent if "labels" in a] == ["CriticalLogPattern"]
    assert len(ctx.sink.rows["logs"]) == 2
