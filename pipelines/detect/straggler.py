"""Tier 3: the straggler, one GPU far slower than its busy peers, and the stalled GPU.

In data-parallel training every GPU of a job waits for the slowest, so one GPU
running at 55 % utilisation or 60 % of its SM clock while its peers are busy
costs the whole job. A GPU at ~0 % inside a running job is *stalled*: a hung
kernel, a dead data loader, an NCCL wait that never ends.

Features are ``"<member>/<metric>"``, e.g. ``"3/gpu_util_pct"``. For each metric
in ``metrics`` a :class:`~pipelines.detect.peer_group.PeerGroup` (direction
``low``) compares the members; a member's score is its worst. Nobody is judged
unless the peers are busy (median of ``busy_metric`` >= ``busy_floor``), so an
idle node or a job winding down is never a straggler.

>>> d = Straggler(warmup=5)
>>> busy = {f"{g}/{m}": v for g in range(4) for m, v in (("gpu_util_pct", 97.0 + g), ("sm_clock_mhz", 1980.0))}
>>> for _ in range(10):
...     d.learn_one(busy)
>>> slow = {**busy, "2/gpu_util_pct": 50.0, "2/sm_clock_mhz": 1190.0}
>>> d.score_many(slow)["2"] > d.threshold, d.stalled({**busy, "1/gpu_util_pct": 0.2})
(True, ['1'])
"""

from __future__ import annotations

from pipelines.detect.base import Detector, Features, register
from pipelines.detect.peer_group import PeerGroup, median

DEFAULT_FLOORS = {"gpu_util_pct": 4.0, "sm_clock_mhz": 40.0}


def split_features(x: Features) -> dict[str, dict[str, float]]:
    """``{"3/gpu_util_pct": v}`` -> ``{"gpu_util_pct": {"3": v}}``."""
    by_metric: dict[str, dict[str, float]] = {}
    for key, v in x.items():
        member, _, metric = key.partition("/")
        if metric:
            by_metric.setdefault(metric, {})[member] = v
    return by_metric


@register
class Straggler(Detector):
    """Per-metric peer comparison (low side), gated on the peers being busy.

    Parameters
    ----------
    metrics: the metrics compared, with the floor of their scale (e.g. 4 % utilisation, 40 MHz).
    busy_metric, busy_floor: judge only while the peers' median of this metric is at least this.
    stall_floor: a member of a busy group reading below this on ``busy_metric`` is stalled.
    threshold_z, alpha, warmup, min_members: as for :class:`PeerGroup`.
    max_busy_step, settle_ticks: nobody is judged for ``settle_ticks`` ticks after the peers' median of
      ``busy_metric`` moved more than ``max_busy_step`` in one tick (phases change a tick or two apart).
    """

    name = "straggler"

    def __init__(self, metrics: dict[str, float] | None = None, busy_metric: str = "gpu_util_pct",
                 busy_floor: float = 50.0, stall_floor: float = 5.0, threshold_z: float = 6.0,
                 alpha: float = 0.01, warmup: int = 60, min_members: int = 3, max_busy_step: float | None = None,
                 settle_ticks: int = 0, seed: int = 0) -> None:
        self.metrics = metrics
        self.busy_metric = busy_metric
        self.busy_floor = busy_floor
        self.stall_floor = stall_floor
        self.threshold_z = threshold_z
        self.alpha = alpha
        self.warmup = warmup
        self.min_members = min_members
        self.max_busy_step = max_busy_step
        self.settle_ticks = settle_ticks
        self.seed = seed
        self._gate = PeerGroup(max_median_step=max_busy_step, settle_ticks=settle_ticks, min_members=min_members)
        floors = DEFAULT_FLOORS if metrics is None else metrics
        self._groups = {m: PeerGroup(direction="low", threshold_z=threshold_z, min_scale=f, alpha=alpha,
                                     min_members=min_members, warmup=warmup, seed=seed)
                        for m, f in floors.items()}

    def _busy(self, by_metric: dict[str, dict[str, float]]) -> bool:
        busy = [v for v in by_metric.get(self.busy_metric, {}).values() if v == v]
        if len(busy) < self.min_members:
            return False
        med = median(busy)
        if med < self.busy_floor:
            return False
        gate = getattr(self, "_gate", None)
        return gate is None or not gate._settling(med)

    def per_metric(self, x: Features) -> dict[str, dict[str, float]]:
        """z per metric per member (all zero while the peers are not busy)."""
        return self.per_metric_split(split_features(x))

    def per_metric_split(self, by_metric: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        """:meth:`per_metric` of features already split per metric (``{"gpu_util_pct": {"3": v}}``)."""
        busy = self._busy(by_metric)
        out = {}
        for m, group in self._groups.items():
            vals = by_metric.get(m, {})
            out[m] = group.score_many(vals) if busy else dict.fromkeys(vals, 0.0)
        return out

    def score_many(self, x: Features, t: float | None = None) -> dict[str, float]:
        out: dict[str, float] = {}
        for scores in self.per_metric(x).values():
            for member, z in scores.items():
                out[member] = max(out.get(member, 0.0), z)
        return out

    def stalled(self, x: Features) -> list[str]:
        """Members at ~0 on ``busy_metric`` while their peers are busy."""
        by_metric = split_features(x)
        if not self._busy(by_metric):
            return []
        return sorted(k for k, v in by_metric.get(self.busy_metric, {}).items() if v < self.stall_floor)

    def learn_one(self, x: Features, t: float | None = None) -> None:
        self.learn_split(split_features(x))

    def learn_split(self, by_metric: dict[str, dict[str, float]]) -> None:
        """:meth:`learn_one` of features already split per metric."""
        busy = self._busy(by_metric)
        gate = getattr(self, "_gate", None)
        if gate is not None:
            gate._track(by_metric.get(self.busy_metric, {}))
        if not busy:
            return
        for m, group in self._groups.items():
            if m in by_metric:
                group.learn_one(by_metric[m])

    def baseline(self, x: Features) -> dict[str, float]:
        """``"member/metric"`` -> what the member would read if it kept up with its peers."""
        out = {}
        for m, vals in split_features(x).items():
            if m in self._groups:
                out.update({f"{k}/{m}": b for k, b in self._groups[m].baseline(vals).items()})
        return out

    @property
    def threshold(self) -> float:
        return self.threshold_z

    @property
    def warm(self) -> bool:
        return all(g.warm for g in self._groups.values())
