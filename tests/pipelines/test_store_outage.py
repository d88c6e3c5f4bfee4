"""A store outage does not stop detection, /healthz says so, and storage catches up exactly once."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from agents.publisher import KafkaPublisher
from agents.simulator import Fault, SimulatedCluster
from pipelines.devstack import ROOT
from schemas.topics import METRICS
from tests.stack import wait_for

pytestmark = pytest.mark.integration

FAULTS = Path(__file__).parent / "faults"


def _alerts(bootstrap: str, topic: str):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-{topic}", "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    seen: list[dict] = []

    def poll() -> list[dict]:
        seen.extend(orjson.loads(m.value()) for m in c.consume(500, 0.5) if not m.error())
        return seen
    return c, poll


def _committed(bootstrap: str, group: str, topic: str) -> list[int]:
    """The group's committed offset per partition of ``topic`` (negative: nothing committed)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        return [tp.offset for tp in c.committed([TopicPartition(topic, p) for p in range(METRICS.partitions)],
                                                timeout=10)]
    finally:
        c.close()


def test_detection_goes_on_while_inserts_fail_and_rows_are_stored_once_when_the_store_returns(stack, bootstrap,
                                                                                              tmp_path):
    down = tmp_path / "store-is-down"
    stack.start_pipeline(PYTHONPATH=f"{FAULTS}{os.pathsep}{ROOT}", GPUWATCH_TEST_FAIL_INSERTS_WHILE=str(down))
    health = f"http://127.0.0.1:{stack.web_port}/healthz"
    assert httpx.get(health, timeout=10).status_code == 200
    down.touch()
    # a cluster reports for two minutes of event time; the store is already down, and its first failed
    # flush is long past when one GPU starts to overheat
    cluster = SimulatedCluster(nodes=2, gpus=2, seed=3, start_ts=time.time() - 120,
                               faults=[Fault.parse("thermal_runaway@node-1/1:60+60")])
    pub = KafkaPublisher({"bootstrap.servers": bootstrap})
    n = 0
    for tick in range(120):
        if tick == 60:
            assert pub.flush(60) == 0
            time.sleep(3)
        batches, _ = cluster.tick()
        for b in batches:
            assert pub.publish(stack.topic(METRICS.name), b["node"], b, block_s=30.0)
            n += len(b["samples"])
    assert pub.flush(60) == 0

    # the fault is detected and alerted while nothing can be stored
    consumer, poll = _alerts(bootstrap, stack.topic("gpuwatch.alerts.v1"))
    try:
        firing = wait_for(lambda: [a for a in poll() if a["status"] == "firing" and a["alertname"] == "GpuTemperatureHigh"
                                   and (a["labels"].get("node"), a["labels"].get("gpu")) == ("node-1", "1")], 90,
                          what="a firing alert for the faulty GPU while the store is down")
    finally:
        consumer.close()
    assert firing
    assert stack.scalar("SELECT count() FROM gpuwatch.metrics_raw") == 0
    # no offset is committed ahead of storage: nothing is stored, so nothing is committed
    group, metrics_topic = f"{stack.prefix}-pipeline", stack.topic(METRICS.name)
    assert all(offset < 0 for offset in _committed(bootstrap, group, metrics_topic))

    # and the worker says it is not healthy, and why; /metrics shows the same numbers
    r = wait_for(lambda: (r := httpx.get(health, timeout=10)).status_code == 503 and r, 30, what="/healthz 503")
    body = r.json()
    assert body["status"] == "unhealthy" and any("inserts failing" in x and "NOT_ENOUGH_SPACE" in x
                                                 for x in body["reasons"]), body
    metrics = httpx.get(f"http://127.0.0.1:{stack.web_port}/metrics", timeout=10).text
    assert "gpuwatch_healthy 0.0" in metrics
    assert 'gpuwatch_insert_errors_total{kind="recoverable",table="metrics_raw"}' in metrics

    # the store returns: every sample is stored, once, soon, and health comes back
    down.unlink()
    wait_for(lambda: stack.scalar("SELECT count() FROM gpuwatch.metrics_raw") >= n, 60, what=f"{n} rows")
    wait_for(lambda: httpx.get(health, timeout=10).status_code == 200, 30, what="/healthz 200 again")
    wait_for(lambda: sum(max(0, o) for o in _committed(bootstrap, group, metrics_topic)) > 0, 30,
             what="offsets committed once their rows are stored")
    time.sleep(2)
    row = stack.query("SELECT count() AS rows, uniqExact(node, gpu, metric, ts) AS points FROM gpuwatch.metrics_raw")[0]
    assert row == {"rows": n, "points": n}
