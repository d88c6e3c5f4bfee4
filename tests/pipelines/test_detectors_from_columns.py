"""Detectors fed from the decoded columns judge exactly as when fed the validated model.

The metrics processor no longer builds a pydantic model per batch; it hands the per-node
detectors the batch's columns. Same simulated cluster (a thermal fault, jobs with per-GPU
labels, one node with batch-level labels), two detector sets: the scores and conditions
must be identical, batch by batch.
"""

from __future__ import annotations

import time

import orjson

from agents.simulator import Fault, SimulatedCluster
from pipelines.detect import new_node_detectors
from pipelines.detect.config import DetectionConfig
from pipelines.transforms.metric_columns import decode_metric_messages
from schemas.codec import decode
from schemas.metrics import MetricBatch


def _conditions(obs):
    return [(c.alertname, sorted(c.labels.items()), c.ts, c.source) for c in obs.conditions]


def test_detectors_fed_columns_judge_like_detectors_fed_the_model():
    config = DetectionConfig.default()
    ticks = 240
    cluster = SimulatedCluster(nodes=3, gpus=4, seed=5, start_ts=time.time() - ticks, interval=1.0,
                               faults=[Fault.parse("thermal_runaway@node-1/2:120+60")])
    by_model, by_columns = {}, {}
    conditions = 0
    for _ in range(ticks):
        batches, _ = cluster.tick()
        for b in batches:
            if b["node"] == "node-2":
                b["labels"] = {"rack": "r7"}  # batch-level labels: stored on every row, not a sample's own
            raw = orjson.dumps(b)
            node = b["node"]
            model = decode(raw, MetricBatch)
            cols, rejected = decode_metric_messages([(raw, 0, 0)])
            assert not rejected
            a = by_model.setdefault(node, new_node_detectors(config, node)).observe(model)
            c = by_columns.setdefault(node, new_node_detectors(config, node)).observe_columns(
                node, float(cols.batch_ts[0]), cols.gpu.tolist(), cols.metric, cols.value.tolist(),
                cols.own_labels.get(0, cols.labels))
            assert c.scores == a.scores
            assert _conditions(c) == _conditions(a)
            assert [s.job for s in c.job_summaries] == [s.job for s in a.job_summaries]
            conditions += len(a.conditions)
    assert conditions > 0  # the fault was judged, so the comparison covered conditions too
