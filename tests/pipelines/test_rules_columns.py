"""Threshold rules over a batch's columns give exactly the conditions of the row-wise rules.

A differential test: value and ``increase`` rules, two rules on one metric, label
matches, counter resets and per-process series share a stream of random batches;
both evaluators must report the same conditions in the same order.
"""

from __future__ import annotations

import random

import numpy as np

from pipelines.transforms.rules import RuleSet

RULES = """
groups:
  - name: g
    rules:
      - {alert: Hot, metric: temp, op: ">", threshold: 80, for: 10s}
      - {alert: VeryHot, metric: temp, op: ">=", threshold: 90}
      - {alert: LowMem, metric: free, op: "<", threshold: 5}
      - {alert: TrainingHot, metric: temp, op: ">", threshold: 70, match: {job: train}}
      - {alert: Ecc, metric: ecc, function: increase, window: 30s, op: ">", threshold: 2}
      - {alert: EccAny, metric: ecc, function: increase, window: 30s, op: ">", threshold: 0}
      - {alert: EccTrain, metric: ecc, function: increase, window: 10s, op: ">=", threshold: 1, match: {job: train}}
"""


def _batch(rng: random.Random, ts: float, counters: dict, fixed: bool = False):
    """A batch of random values; ``fixed``: in the same layout every time (a node's usual tick)."""
    rows = []
    for gpu in range(-1, 4):
        labels = rng.choice([{}, {"job": "train"}, {"job": "infer"}])
        for metric in ("temp", "free", "ecc", "power"):
            if metric == "ecc":
                c = counters.get(gpu, 0) + rng.choice([0, 0, 1, 3])
                counters[gpu] = c if rng.random() > 0.05 else 0  # a reset now and then
                value = float(counters[gpu])
            else:
                value = rng.uniform(0, 100)
            rows.append((ts, gpu, f"GPU-{gpu}", metric, value, labels))
        if not fixed and rng.random() < 0.3:  # a second, per-process series of one metric
            rows.append((ts, gpu, f"GPU-{gpu}", "temp", rng.uniform(60, 100), {"pid": str(rng.randrange(9))}))
    if not fixed:
        rng.shuffle(rows)
    return rows


def _summary(conditions):
    return [(c.alertname, c.labels.get("gpu"), c.ts, c.evidence[0].value, c.annotations) for c in conditions]


def test_column_rules_match_row_rules():
    rng = random.Random(3)
    by_rows, by_cols = RuleSet.from_yaml(RULES), RuleSet.from_yaml(RULES)
    counters: dict = {}
    fired: set = set()
    for tick in range(300):
        node = f"n{tick % 3}"
        # n0 keeps one layout for its first 50 ticks and then changes it now and then; n1 and n2 always do
        fixed = node == "n0" and (tick < 150 or rng.random() < 0.5)
        rows = _batch(rng, 1_000_000.0 + tick * 2, counters, fixed)
        want = by_rows.evaluate(node, rows)
        ts, gpu, uuid, metric, value, labels = zip(*rows)
        got = by_cols.evaluate_columns(node, np.array(ts), np.array(gpu, np.int16), list(uuid), list(metric),
                                       np.array(value), list(labels))
        assert _summary(got) == _summary(want)
        fired |= {c.alertname for c in want}
    assert fired == {"Hot", "VeryHot", "LowMem", "TrainingHot", "Ecc", "EccAny", "EccTrain"}  # every kind fired
