"""Tier 7: members (nodes, GPUs) that stop reporting.

A silent node produces no data to score, so absence is judged from *last
seen* times against a clock: ``learn_one({member: 1.0, ...}, t)`` records who
reported at ``t`` and learns each member's usual interval; ``score_many({}, t)``
says, for every known member, how many usual intervals it has been silent
(0 while it is on time). A member silent longer than ``forget_after_s`` is
forgotten (decommissioned), and so stops being reported.

>>> d = Absence(min_silence_s=3.0)
>>> for t in range(10):
...     d.learn_one({"gpu0": 1.0, "gpu1": 1.0} if t < 5 else {"gpu0": 1.0}, t=float(t))
>>> s = d.score_many({}, t=10.0)
>>> s["gpu1"] > d.threshold > s["gpu0"]
True
"""

from __future__ import annotations

import math

from pipelines.detect.base import Detector, Features, register


@register
class Absence(Detector):
    """Silence of each known member, in units of its usual reporting interval.

    Parameters
    ----------
    missed_intervals: silent for this many usual intervals counts as absent (the threshold).
    min_silence_s: and for at least this long (one late scrape is not an outage).
    default_interval_s: assumed interval until one has been learned.
    forget_after_s: a member silent this long is dropped.
    warmup: reports a member needs before its silence counts.
    """

    name = "absence"

    def __init__(self, missed_intervals: float = 3.0, min_silence_s: float = 5.0,
                 default_interval_s: float = 1.0, forget_after_s: float = 6 * 3600.0,
                 warmup: int = 3, seed: int = 0) -> None:
        self.missed_intervals = missed_intervals
        self.min_silence_s = min_silence_s
        self.default_interval_s = default_interval_s
        self.forget_after_s = forget_after_s
        self.warmup = warmup
        self.seed = seed
        #: member -> [last seen, usual interval, reports]
        self._seen: dict[str, list[float]] = {}
        self._now = -math.inf

    def learn_one(self, x: Features, t: float | None = None) -> None:
        if t is None:
            raise ValueError("absence needs the event time t of each report")
        self._now = max(self._now, t)
        for m in x:
            rec = self._seen.get(m)
            if rec is None:
                self._seen[m] = [t, self.default_interval_s, 1]
                continue
            gap = t - rec[0]
            if gap > 0:
                # learn the usual interval, but do not let an outage redefine "usual"
                gap = min(gap, 3 * rec[1])
                rec[1] += (0.3 if rec[2] < 10 else 0.05) * (gap - rec[1])
                rec[0] = t
            rec[2] += 1
        for m, rec in list(self._seen.items()):
            if t - rec[0] > self.forget_after_s:
                del self._seen[m]

    def expect(self, member: str, interval_s: float, t: float) -> None:
        """Declare a member and its interval (from a heartbeat's ``interval_s``), as seen at ``t``."""
        rec = self._seen.setdefault(member, [t, interval_s, self.warmup])
        rec[0], rec[1] = max(rec[0], t), interval_s
        rec[2] = max(rec[2], self.warmup)
        self._now = max(self._now, t)

    def silence(self, member: str, t: float) -> float:
        """Seconds since ``member`` last reported (0 if unknown)."""
        rec = self._seen.get(member)
        return max(0.0, t - rec[0]) if rec else 0.0

    def last_seen(self, member: str) -> float | None:
        rec = self._seen.get(member)
        return rec[0] if rec else None

    def score_many(self, x: Features, t: float | None = None) -> dict[str, float]:
        t = self._now if t is None else t
        out = {}
        for m, (last, interval, n) in self._seen.items():
            silent = t - last
            if m in x or n < self.warmup or silent < self.min_silence_s:
                out[m] = 0.0
            else:
                out[m] = silent / max(interval, 1e-3)
        return out

    def members(self) -> list[str]:
        return list(self._seen)

    def forget(self, member: str) -> None:
        self._seen.pop(member, None)

    @property
    def threshold(self) -> float:
        return self.missed_intervals

    @property
    def warm(self) -> bool:
        return any(rec[2] >= self.warmup for rec in self._seen.values())
