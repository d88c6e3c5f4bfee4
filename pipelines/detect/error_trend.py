"""Early warning: error signals rising on one GPU before a fatal event (XID 79, a GPU off the bus).

Hardware that is about to fail often says so first, and quietly: the
correctable-ECC rate creeps up, rows wait to be remapped, PCIe replays or NVLink
CRC errors become frequent, the hardware-slowdown throttle flickers, the PCIe
link trains down to a narrower width or an older generation. Each of these is
judged per GPU:

- counters (``*_rate`` features, events/s): a :class:`CounterBurst` over a long
  window (``window_s``, minutes), with its own false-alert budget, so a rate that
  doubles for minutes shows long before any burst would;
- ``throttle_hw_slowdown`` (0/1 per sample): counted like events;
- ``remapped_rows_pending`` > 0: a remap is waiting for a GPU reset;
- ``pcie_link_width`` below the widest seen on this GPU, or ``pcie_link_gen``
  below the highest seen while the GPU is busy (idle links may legitimately
  drop their generation to save power).

Scores are scaled so that 1.0 is the threshold; subjects are ``"<signal>"``.

>>> d = ErrorTrend(warmup_s=10)
>>> for t in range(30):
...     d.learn_one({"pcie_link_width": 16.0, "gpu_util_pct": 90.0}, t=float(t))
>>> d.score_many({"pcie_link_width": 8.0, "gpu_util_pct": 90.0}, t=31.0)["pcie_link_width"] >= d.threshold
True
"""

from __future__ import annotations

from pipelines.detect.base import Detector, Features, register
from pipelines.detect.counter_burst import CounterBurst

RATES = ("ecc_sbe_rate", "pcie_replay_rate", "nvlink_crc_rate", "throttle_hw_slowdown")
GAUGES = ("remapped_rows_pending", "pcie_link_width", "pcie_link_gen")


@register
class ErrorTrend(Detector):
    """Rising error counters, pending row remaps and link downgrades on one GPU.

    Parameters
    ----------
    window_s, budget_per_1000h, prior_rate: of the long-window counter test (see CounterBurst).
    busy_util: a link generation below its best counts only while utilisation is at least this.
    warmup_s: seconds observed before anything is judged.
    seed: unused (deterministic), kept for the shared contract.
    """

    name = "error_trend"

    def __init__(self, window_s: float = 300.0, budget_per_1000h: float = 0.02, prior_rate: float = 0.002,
                 busy_util: float = 20.0, warmup_s: float = 600.0, seed: int = 0) -> None:
        self.window_s = window_s
        self.budget_per_1000h = budget_per_1000h
        self.prior_rate = prior_rate
        self.busy_util = busy_util
        self.warmup_s = warmup_s
        self.seed = seed
        self._counts = CounterBurst(window_s=window_s, budget_per_1000h=budget_per_1000h, min_events=4,
                                    prior_rate=prior_rate, prior_s=60.0, warmup_s=warmup_s,
                                    adapt_after_s=4 * 3600.0)
        self._best: dict[str, float] = {}
        self._first_t: float | None = None

    def _rates(self, x: Features) -> dict[str, float]:
        return {k: float(x[k]) for k in RATES if k in x}

    def score_many(self, x: Features, t: float | None = None) -> dict[str, float]:
        return self._scores(x, t, self._counts.score_many)

    def _scores(self, x: Features, t: float | None, count_scores) -> dict[str, float]:
        """Every signal's score, the counters' from ``count_scores`` (scoring, or scoring and learning)."""
        out = dict.fromkeys([k for k in (*RATES, *GAUGES) if k in x], 0.0)
        thr = self._counts.threshold
        for k, s in count_scores(self._rates(x), t).items():
            out[k] = s / thr
        self._judge_gauges(x, t, out)
        return out

    def _judge_gauges(self, x: Features, t: float | None, out: dict[str, float]) -> None:
        """Pending remaps and link downgrades, into ``out`` (against what was learned before ``x``)."""
        if self._first_t is None or t is None or t - self._first_t < self.warmup_s:
            return
        if x.get("remapped_rows_pending", 0.0) > 0:
            out["remapped_rows_pending"] = 2.0
        width, best_w = x.get("pcie_link_width"), self._best.get("pcie_link_width")
        if width is not None and best_w is not None and width < best_w:
            out["pcie_link_width"] = 2.0
        gen, best_g = x.get("pcie_link_gen"), self._best.get("pcie_link_gen")
        if gen is not None and best_g is not None and gen < best_g and x.get("gpu_util_pct", 0.0) >= self.busy_util:
            out["pcie_link_gen"] = 2.0

    def score_then_learn(self, x: Features, t: float | None = None) -> dict[str, float]:
        """One pass: the counters are scored and learned together, the gauges judged before they are learned."""
        out = self._scores(x, t, self._counts.score_then_learn)
        self._learn_gauges(x, t)
        return out

    def learn_one(self, x: Features, t: float | None = None) -> None:
        self._counts.learn_one(self._rates(x), t)
        self._learn_gauges(x, t)

    def _learn_gauges(self, x: Features, t: float | None) -> None:
        if self._first_t is None and t is not None:
            self._first_t = t
        for k in ("pcie_link_width", "pcie_link_gen"):
            v = x.get(k)
            if v is not None and v == v:
                self._best[k] = max(v, self._best.get(k, v))

    @property
    def threshold(self) -> float:
        return 1.0

    @property
    def warm(self) -> bool:
        return self._first_t is not None and self._counts.warm
