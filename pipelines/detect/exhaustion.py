"""Tier 5: forecast when a resource (GPU memory, disk) will run out, and say when.

A River :class:`~river.time_series.HoltWinters` model (level + additive trend)
follows the used *fraction* of the resource; its forecast is a straight line,
so the number of steps until it crosses ``full_at`` follows from the
one- and two-step forecasts. Steps become seconds with the mean sampling
interval, which is learned from the timestamps.

A resource that *fills up and settles* (a job allocating its working set at
start) is not exhausting. So the forecast only counts while the growth keeps
pace: the smoothed increment must not shrink below ``sustain_ratio`` of what it
was one step before (a settling fill shrinks geometrically; a leak does not).
A decelerating fill reads as infinite time to exhaustion.

The score is ``horizon_s / time_to_exhaustion``: 1.0 or more means full
within the horizon.

>>> d = Exhaustion(horizon_s=600, warmup=5)
>>> for i in range(30):
...     d.learn_one({"used": 50.0 + 0.25 * i, "limit": 80.0}, t=1000.0 + i)
>>> round(d.time_to_exhaustion())
85
>>> d.score_one({"used": 57.5, "limit": 80.0}, t=1030.0) > d.threshold
True
"""

from __future__ import annotations

import math

from river import time_series

from pipelines.detect.base import Detector, Features, register


@register
class Exhaustion(Detector):
    """Time to exhaustion of one resource from ``used`` and ``limit`` (or ``free``) features.

    Parameters
    ----------
    horizon_s: alert when the resource would be full within this many seconds.
    full_at: fraction of the limit that counts as full.
    alpha, beta: HoltWinters smoothing of level and trend.
    sustain_ratio: the growth-keeps-pace guard (see module docstring).
    min_rate: ignore growth slower than this fraction of the limit per second.
    warmup: samples before forecasts count.
    """

    name = "exhaustion"

    def __init__(self, horizon_s: float = 1800.0, full_at: float = 0.98, alpha: float = 0.5, beta: float = 0.3,
                 sustain_ratio: float = 0.9, min_rate: float = 1e-6,
                 warmup: int = 10, seed: int = 0) -> None:
        self.horizon_s = horizon_s
        self.full_at = full_at
        self.alpha = alpha
        self.beta = beta
        self.sustain_ratio = sustain_ratio
        self.min_rate = min_rate
        self.warmup = warmup
        self.seed = seed
        self._model = time_series.HoltWinters(alpha=alpha, beta=beta)
        self._n = 0
        self._last_frac: float | None = None
        self._last_t: float | None = None
        self._dt: float | None = None  # mean sampling interval, learned from the timestamps
        self._inc = 0.0
        self._prev_inc = 0.0
        self._t: float | None = None

    @staticmethod
    def _fraction(x: Features) -> float | None:
        used, limit = x.get("used"), x.get("limit")
        if limit is None and used is not None and x.get("free") is not None:
            limit = used + x["free"]
        if used is None or not limit or not (math.isfinite(used) and math.isfinite(limit)) or limit <= 0:
            return None
        return used / limit

    def learn_one(self, x: Features, t: float | None = None) -> None:
        frac = self._fraction(x)
        if frac is None:
            return
        if self._last_frac is not None:
            inc = frac - self._last_frac
            self._prev_inc = self._inc
            self._inc += 0.5 * (inc - self._inc)
        if t is not None:
            if self._last_t is not None and t > self._last_t:
                gap = t - self._last_t
                self._dt = gap if self._dt is None else self._dt + (0.2 if self._n < self.warmup else 0.02) * (
                    gap - self._dt)
            self._last_t = t
        self._t = t
        self._last_frac = frac
        self._model.learn_one(frac)
        self._n += 1

    def _steps_to_full(self) -> float:
        if self._n < max(self.warmup, 2) or self._inc <= 0 or self._inc < self.sustain_ratio * self._prev_inc:
            return math.inf
        f1, f2 = self._model.forecast(horizon=2)
        slope = f2 - f1
        if slope <= self.min_rate * self.interval():
            return math.inf
        return max(0.0, (self.full_at - f1) / slope + 1.0)

    def time_to_exhaustion(self) -> float:
        """Seconds from the last observation until the resource is full (inf: not on course to fill)."""
        return self._steps_to_full() * self.interval()

    def interval(self) -> float:
        """The mean sampling interval in seconds (1.0 until two timestamps have been seen)."""
        return 1.0 if self._dt is None else self._dt

    def exhaustion_at(self) -> float | None:
        """Epoch seconds at which the resource is forecast full, or None."""
        tte = self.time_to_exhaustion()
        return None if self._t is None or not math.isfinite(tte) else self._t + tte

    def score_many(self, x: Features, t: float | None = None) -> dict[str, float]:
        frac = self._fraction(x)
        if frac is None:
            return {"exhaustion": 0.0}
        if frac >= self.full_at and self._inc > 0:
            return {"exhaustion": self.horizon_s / self.interval()}  # already full and still growing
        tte = self.time_to_exhaustion()
        return {"exhaustion": 0.0 if not math.isfinite(tte) else self.horizon_s / max(tte, self.interval())}

    def fraction(self) -> float | None:
        """The last used fraction seen."""
        return self._last_frac

    @property
    def threshold(self) -> float:
        return 1.0

    @property
    def warm(self) -> bool:
        return self._n >= self.warmup
