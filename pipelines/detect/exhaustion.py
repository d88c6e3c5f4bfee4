"""Tier 5: forecast when a resource (GPU memory, disk) will run out, and say when.

A leak grows by about the same amount every sample; a job allocating its
working set, a checkpoint buffer or an inference cache following its load jump
or wander and settle. So the growth rate is the *median* of the used fraction's
last 8 increments when every one of them grew by at least a quarter of the
largest, or else of the last ``window`` when at least ``min_positive`` of them
grew and its oldest and newest quarters grow within a factor 2 of it: one jump (a job
starting), a settling fill (or two in a row) and noise around a level give no rate. Steps become seconds with the
mean sampling interval, which is learned from the timestamps; the time to
exhaustion is the distance to ``full_at`` over that rate.

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
from collections import deque

from pipelines.detect.base import Detector, Features, register


def _median(s: list[float]) -> float:
    h = len(s) // 2
    return s[h] if len(s) % 2 else 0.5 * (s[h - 1] + s[h])


@register
class Exhaustion(Detector):
    """Time to exhaustion of one resource from ``used`` and ``limit`` (or ``free``) features.

    Parameters
    ----------
    horizon_s: alert when the resource would be full within this many seconds.
    full_at: fraction of the limit that counts as full.
    window: increments the growth rate is the median of.
    min_positive: share of those increments that must be positive (steady growth, not a jump).
    min_rate: ignore growth slower than this fraction of the limit per second.
    warmup: samples before forecasts count.
    seed: unused (deterministic), kept for the shared contract.
    """

    name = "exhaustion"

    def __init__(self, horizon_s: float = 1800.0, full_at: float = 0.98, window: int = 20,
                 min_positive: float = 0.8, min_rate: float = 1e-6, warmup: int = 10, seed: int = 0) -> None:
        self.horizon_s = horizon_s
        self.full_at = full_at
        self.window = window
        self.min_positive = min_positive
        self.min_rate = min_rate
        self.warmup = warmup
        self.seed = seed
        self._incs: deque = deque(maxlen=window)
        self._n = 0
        self._last_frac: float | None = None
        self._last_t: float | None = None
        self._dt: float | None = None  # mean sampling interval, learned from the timestamps
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
        if frac is not None:
            self._learn_fraction(frac, t)

    def learn_then_score(self, x: Features, t: float | None = None) -> float:
        """``learn_one(x, t)``, then ``score_one(x, t)``: the engine's tick, ``x`` read once."""
        frac = self._fraction(x)
        if frac is None:
            return 0.0
        self._learn_fraction(frac, t)
        return self._score_fraction(frac)

    def _learn_fraction(self, frac: float, t: float | None) -> None:
        if self._last_frac is not None:
            self._incs.append(frac - self._last_frac)
        if t is not None:
            if self._last_t is not None and t > self._last_t:
                gap = t - self._last_t
                self._dt = gap if self._dt is None else self._dt + (0.2 if self._n < self.warmup else 0.02) * (
                    gap - self._dt)
            self._last_t = t
        self._t = t
        self._last_frac = frac
        self._n += 1

    def _rate(self) -> float:
        """Growth of the used fraction per sample; 0 unless growth is steady."""
        if self._n < max(self.warmup, 2) or len(self._incs) < 8:
            return 0.0
        seq = list(self._incs)
        short = seq[-8:]  # a clean leak shows in a few samples: every one of them grew, by about as much
        if min(short) > 0 and min(short) >= 0.25 * max(short):
            return _median(sorted(short))
        if len(seq) < self.window or sum(1 for v in seq if v > 0) < self.min_positive * len(seq):
            return 0.0
        if sum(1 for a, b in zip(seq, seq[1:]) if b < a) > 0.8 * (len(seq) - 1):
            return 0.0  # increments shrinking step after step: fills settling, however many in a row
        rate = _median(sorted(seq))
        q = max(3, len(seq) // 4)
        for part in (seq[:q], seq[-q:]):  # a leak grows alike throughout; a settling fill (or two) does not
            if not 0.5 * rate <= _median(sorted(part)) <= 2.0 * rate:
                return 0.0
        return rate

    def _steps_to_full(self) -> float:
        rate = self._rate()
        if rate <= self.min_rate * self.interval() or self._last_frac is None:
            return math.inf
        return max(0.0, (self.full_at - self._last_frac) / rate)

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
        return {"exhaustion": 0.0 if frac is None else self._score_fraction(frac)}

    def _score_fraction(self, frac: float) -> float:
        if frac >= self.full_at and self._rate() > 0:
            return self.horizon_s / self.interval()  # already full and still growing
        tte = self.time_to_exhaustion()
        return 0.0 if not math.isfinite(tte) else self.horizon_s / max(tte, self.interval())

    def fraction(self) -> float | None:
        """The last used fraction seen."""
        return self._last_frac

    @property
    def threshold(self) -> float:
        return 1.0

    @property
    def warm(self) -> bool:
        return self._n >= self.warmup
