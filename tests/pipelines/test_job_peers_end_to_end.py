"""One node slower than the rest of its job, found across nodes by the running pipeline.

The job's nodes live on different partitions; their summaries meet, re-keyed by
job, in the job-peers processor, which aligns them in event time.
"""

from __future__ import annotations

import time

import pytest

from agents.publisher import KafkaPublisher
from agents.simulator import SimulatedCluster
from tests.stack import wait_for

pytestmark = pytest.mark.integration

TICKS, SLOW_FROM = 220, 120


def test_a_node_slower_than_its_job_alerts_on_that_node_only(stack, bootstrap):
    stack.start_pipeline()
    cluster = SimulatedCluster(nodes=4, gpus=2, seed=5, nodes_per_job=4, job_churn_ticks=10**9,
                               start_ts=time.time() - TICKS)
    pub = KafkaPublisher({"bootstrap.servers": bootstrap})
    for tick in range(TICKS):
        batches, _ = cluster.tick()
        for b in batches:
            if b["node"] == "node-2" and tick >= SLOW_FROM:  # its share of the job's throughput halves
                for s in b["samples"]:
                    if s["metric"] == "job_tokens_per_s":
                        s["value"] *= 0.5
            assert pub.publish(stack.topic("gpuwatch.metrics.v1"), b["node"], b, block_s=30)
        pub.flush(10)
        time.sleep(0.04)  # agents report live, a tick at a time (20x faster than real time)
    assert pub.flush(60) == 0

    sql = ("SELECT node, status, source FROM gpuwatch.alerts WHERE alertname = 'NodeSlowerThanJob' "
           "ORDER BY event_ts")
    rows = wait_for(lambda: stack.query(sql), 90, what="a NodeSlowerThanJob alert")
    time.sleep(3)
    rows = stack.query(sql)
    assert {r["node"] for r in rows} == {"node-2"}
    assert [r["status"] for r in rows][:1] == ["firing"] and len([r for r in rows if r["status"] == "firing"]) == 1
    onset = stack.scalar("SELECT toUnixTimestamp(min(starts_at)) FROM gpuwatch.alerts "
                         "WHERE alertname = 'NodeSlowerThanJob'")
    assert onset >= cluster.start_ts + SLOW_FROM - 1
