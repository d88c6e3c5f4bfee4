"""Two pipeline workers in one consumer group: partitions move when one joins and when it leaves.

Each worker owns its own chDB path (chDB allows one process per path): the test checks what the
shared Kafka topics show (what was paged), and, once both have stopped, that the two stores
together hold every published sample. Every node keeps reporting throughout, and every
node has one hot GPU from the start: no node may be paged as silent (the old owner must stop
judging a node it no longer reads), and each hot GPU is paged exactly once, however often its
partition moves (the new owner restores the incident book from its changelog).
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx
import orjson
import pytest
from confluent_kafka import Consumer

from agents.publisher import KafkaPublisher
from infra.kafka.broker import free_port
from schemas.topics import HEARTBEATS, METRICS
from tests.stack import wait_for

pytestmark = pytest.mark.integration

NODES = 12


def _publish_live(stack, bootstrap: str, stop: threading.Event, published: list) -> None:
    pub = KafkaPublisher({"bootstrap.servers": bootstrap})
    seq = 0
    while not stop.is_set():
        now = time.time()
        for i in range(NODES):
            node = f"node-{i}"
            pub.publish(stack.topic(HEARTBEATS.name), node, {
                "v": 1, "kind": "heartbeat", "node": node, "ts": now, "agent_version": "test", "interval_s": 1.0})
            pub.publish(stack.topic(METRICS.name), node, {
                "v": 1, "kind": "metrics", "node": node, "ts": now, "seq": seq, "samples": [
                    {"gpu": 0, "uuid": f"GPU-{i}-0", "metric": "gpu_temp_c", "value": 95.0, "unit": "C"},
                    {"gpu": 1, "uuid": f"GPU-{i}-1", "metric": "gpu_temp_c", "value": 60.0, "unit": "C"}]})
        pub.flush(5)
        published.extend((f"node-{i}", g, round(now * 1000)) for i in range(NODES) for g in (0, 1))
        seq += 1
        stop.wait(max(0.0, 1.0 - (time.time() - now)))
    pub.flush(10)


def _pages(bootstrap: str, topic: str) -> list[dict]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-{topic}", "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    out: list[dict] = []
    try:
        end = time.monotonic() + 10
        while time.monotonic() < end:
            out.extend(orjson.loads(m.value()) for m in c.consume(500, 0.5) if not m.error())
    finally:
        c.close()
    return out


def test_partitions_move_both_ways_without_false_silence_pages_or_repeated_pages(stack, bootstrap, tmp_path):
    # the group notices a joining or leaving worker within seconds
    env = {"GPUWATCH_KAFKA_SESSION_TIMEOUT_S": "6", "GPUWATCH_CHECKPOINT_INTERVAL_S": "1"}
    stack.start_pipeline(**env)
    stop = threading.Event()
    published: list[tuple] = []
    publisher = threading.Thread(target=_publish_live, args=(stack, bootstrap, stop, published), daemon=True)
    publisher.start()
    try:
        wait_for(lambda: stack.scalar("SELECT uniqExact(node) FROM gpuwatch.alerts WHERE status = 'firing'")
                 == NODES, 90, what="every hot GPU paged by the first worker")
        second_port = free_port()
        second = stack.spawn("pipeline-2", "pipeline", GPUWATCH_HOME=str(tmp_path / "second"),
                             GPUWATCH_WEB_PORT=str(second_port), **env)
        second.wait_for_line("pipeline: ready")

        def second_reads() -> int:
            r = httpx.post(f"http://127.0.0.1:{second_port}/query", timeout=30,
                           json={"sql": "SELECT uniqExact(node) FROM gpuwatch.metrics_raw"})
            return r.json()["rows"][0][0] if r.status_code == 200 else 0
        wait_for(second_reads, 90, interval=1.0, what="the second worker to take partitions over")
        # longer than absence's min_silence_s (30 s): the first worker would have paged moved nodes by now
        time.sleep(40)
        second.stop()
        time.sleep(40)  # the partitions are back on the first worker
    finally:
        stop.set()
        publisher.join(30)
    pages = [a for a in _pages(bootstrap, stack.topic("gpuwatch.alerts.v1"))]
    silent = [a["labels"]["node"] for a in pages if a["alertname"] == "NodeStoppedReporting"]
    assert silent == [], silent
    # a page is a new incident, (fingerprint, start); later firing events of it are updates (evidence, series)
    incidents = {(a["fingerprint"], a["starts_at"], a["status"], a["labels"]["node"])
                 for a in pages if a["alertname"] == "GpuTemperatureHigh"}
    hot = Counter((node, status) for _, _, status, node in incidents)
    assert hot == {(f"node-{i}", "firing"): 1 for i in range(NODES)}, hot

    # every sample stored by whichever worker owned its partition at the time: none lost in the moves.
    # (Not "once": a new owner re-reads from the commit, which trails the stored rows by the open
    # 1-minute windows it must rebuild; on one shared ClickHouse server its resume point skips rows
    # the old owner stored, but two chDB paths cannot see each other's rows. docs/state.md.)
    last_ms = max(p[2] for p in published)  # every node's last batch, the last message of its partition
    wait_for(lambda: stack.scalar("SELECT count() FROM gpuwatch.metrics_raw "
                                  f"WHERE toUnixTimestamp64Milli(ts) = {last_ms}") == NODES * 2, 120,
             what="the first worker to store the last batch of every node")
    stack.stop_all()
    stored = set(_stored(stack, stack.home)) | set(_stored(stack, tmp_path / "second"))
    in_kafka = _samples_in_topic(bootstrap, stack.topic(METRICS.name))
    missing = (set(published) & in_kafka) - stored  # a sample the test's producer never delivered is not the pipeline's
    # Until every rebalance re-read never-committed partitions from their beginning (pipelines/commit.py:
    # replay_uncommitted_from_start), one tick of the partitions in flight was lost in about 2 runs of 6.
    assert not missing, f"{len(missing)} samples in Kafka but in neither worker's store, e.g. {sorted(missing)[:4]}"


def _samples_in_topic(bootstrap: str, topic: str) -> set[tuple]:
    out: set[tuple] = set()
    for doc in _pages(bootstrap, topic):
        out.update((doc["node"], s["gpu"], round(doc["ts"] * 1000)) for s in doc["samples"])
    return out


def _stored(stack, home) -> list[tuple]:
    """(node, gpu, ms) of every sample in one worker's store, read with `gpuwatch query` (no pipeline holds it)."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "pipelines.cli", "query", "--format", "json",
                        "SELECT node, gpu, toUnixTimestamp64Milli(ts) AS ms FROM gpuwatch.metrics_raw"],
                       env={**__import__("os").environ, **stack.env(GPUWATCH_HOME=str(home))},
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    doc = orjson.loads(r.stdout)
    rows = doc if isinstance(doc, list) else doc["rows"]
    return [(row["node"], int(row["gpu"]), int(row["ms"])) if isinstance(row, dict) else
            (row[0], int(row[1]), int(row[2])) for row in rows]
