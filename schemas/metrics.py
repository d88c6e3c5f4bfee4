"""Metric batches: one message per node per scrape, carrying many samples.

Batching per scrape keeps Kafka's per-message overhead off the hot path: a node
with 8 GPUs and 30 signals sends one message a second, not 240.

>>> import time
>>> b = MetricBatch(node="n1", ts=time.time(), samples=[
...     MetricSample(gpu=0, uuid="GPU-1", metric="gpu_temp_c", value=61.0, unit="C")])
>>> b.samples[0].metric
'gpu_temp_c'
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from schemas.base import EpochSeconds, FiniteFloat, Labels, MetricName, NodeId, WireModel

#: GPU index used for node-level samples (host CPU, disk, network).
NODE_LEVEL_GPU = -1


class MetricSample(WireModel):
    """One value of one signal. ``ts`` defaults to the batch's scrape time."""

    gpu: int = Field(ge=NODE_LEVEL_GPU, le=1023)
    uuid: str = Field(default="", max_length=96)
    metric: MetricName
    value: FiniteFloat
    unit: str = Field(default="", max_length=16)
    ts: EpochSeconds | None = None
    labels: Labels = Field(default_factory=dict)


class MetricBatch(WireModel):
    """All samples one node scraped at one moment."""

    v: Literal[1] = 1
    kind: Literal["metrics"] = "metrics"
    node: NodeId
    ts: EpochSeconds
    seq: int = Field(default=0, ge=0, description="agent-local scrape counter, for gap detection")
    labels: Labels = Field(default_factory=dict)
    samples: list[MetricSample] = Field(min_length=1, max_length=20_000)

    @model_validator(mode="after")
    def _no_duplicate_series(self) -> "MetricBatch":
        # A series is (gpu, metric, labels): one GPU may carry a metric per process, MIG
        # instance or mount, told apart by labels. The same series twice at one time is an error.
        seen: set[tuple] = set()
        for s in self.samples:
            key = (s.gpu, s.metric, s.ts, tuple(sorted(s.labels.items())) if s.labels else ())
            if key in seen:
                raise ValueError(f"sample for gpu {s.gpu} metric {s.metric!r} appears twice in one batch")
            seen.add(key)
        return self

    def sample_ts(self, sample: MetricSample) -> float:
        return sample.ts if sample.ts is not None else self.ts
