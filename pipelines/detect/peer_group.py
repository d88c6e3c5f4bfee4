"""Tier 3: judge each member of a peer group (GPUs of a node, nodes of a job) against the others.

Peers share load, so comparing them cancels what moves them all at once: a job
starting, the diurnal curve, a cooler night. What is left is the member that
does not follow: a GPU much hotter than its neighbours, a node slower than the
rest of its job.

Each tick, a member's *residual* is its value minus the group median, minus a
learned *offset* (a GPU that always runs 2 °C warmer because of its slot in the
chassis is not news). The residual is scaled by the larger of the learned
typical residual, the spread (1.4826 x MAD) of this tick's residuals, and a floor.
Flagged members are not learned from.

>>> d = PeerGroup(direction="high", min_scale=1.0, warmup=5)
>>> for i in range(20):
...     d.learn_one({"0": 60.0, "1": 61.0, "2": 60.5, "3": 59.5})
>>> s = d.score_many({"0": 60.0, "1": 61.0, "2": 72.0, "3": 59.5})
>>> s["2"] > d.threshold > s["0"]
True
"""

from __future__ import annotations

import math

from pipelines.detect.base import Detector, Features, register

_SIGMA_PER_MAD = 1.4826


def median(vals) -> float:
    """Median of a small collection (faster than ``statistics.median`` for a node's 8 GPUs)."""
    s = sorted(vals)
    h = len(s) // 2
    return s[h] if len(s) % 2 else 0.5 * (s[h - 1] + s[h])
_SIGMA_PER_MEAN_ABS = 1.2533


def _finite(x: Features) -> dict[str, float]:
    """The members with a finite number, as floats: ``x`` itself when every value is a finite float (the
    usual tick, told by one sum instead of a test per member)."""
    values = x.values()
    if set(map(type, values)) == {float} and math.isfinite(sum(values)):
        return x
    return {k: float(v) for k, v in x.items() if isinstance(v, (int, float)) and math.isfinite(v)}


@register
class PeerGroup(Detector):
    """Robust deviation of each member from its peers' median.

    Parameters
    ----------
    direction: ``high`` (hotter than peers), ``low`` (slower) or ``both``.
    threshold_z: deviation, in scales, at or above which a member is anomalous.
    min_scale, rel_scale: floor of the scale, absolute and as a fraction of |median|.
    alpha: learning rate of per-member offsets and of the typical residual.
    min_members: fewer members than this and nobody is judged.
    busy_floor: judge only while the group median is at least this (None: always).
    max_median_step, settle_ticks: when the group median moves more than ``max_median_step`` in one
      tick (the whole group changing regime: a job starting, a checkpoint), nobody is judged for
      ``settle_ticks`` ticks, because members never change regime in perfect lockstep.
    learn_below, adapt_after: a member's offset learns only from ticks where it scores below
      ``learn_below x threshold_z`` (so a slowly developing fault is not absorbed), unless it has been
      held out for ``adapt_after`` ticks in a row.
    warmup: ticks of learning before scores count.
    seed: unused (deterministic), kept for the shared contract.
    """

    name = "peer_group"

    def __init__(self, direction: str = "both", threshold_z: float = 6.0, min_scale: float = 1.0,
                 rel_scale: float = 0.0, alpha: float = 0.01, min_members: int = 3,
                 busy_floor: float | None = None, max_median_step: float | None = None, settle_ticks: int = 0,
                 learn_below: float = 0.5, adapt_after: int = 1800, warmup: int = 60, seed: int = 0) -> None:
        if direction not in ("high", "low", "both"):
            raise ValueError(f"direction must be 'high', 'low' or 'both', not {direction!r}")
        if min_members < 3:
            raise ValueError("min_members must be at least 3: with two peers nobody can say which one is odd")
        self.direction = direction
        self.threshold_z = threshold_z
        self.min_scale = min_scale
        self.rel_scale = rel_scale
        self.alpha = alpha
        self.min_members = min_members
        self.busy_floor = busy_floor
        self.max_median_step = max_median_step
        self.settle_ticks = settle_ticks
        self.learn_below = learn_below
        self.adapt_after = adapt_after
        self.warmup = warmup
        self.seed = seed
        self._offset: dict[str, float] = {}
        self._noise = 0.0
        self._ticks = 0
        self._last_median: float | None = None
        self._unsettled = 0

    def _settling(self, med: float) -> bool:
        """Whether the group is changing regime now (see ``max_median_step``)."""
        if self.max_median_step is None:
            return False
        last = getattr(self, "_last_median", None)
        moved = last is not None and abs(med - last) > self.max_median_step
        return moved or getattr(self, "_unsettled", 0) > 0

    def _track(self, x: Features) -> None:
        if self.max_median_step is None:
            return
        vals = list(_finite(x).values())
        if not vals:
            return
        med = median(vals)
        last = getattr(self, "_last_median", None)
        if last is not None and abs(med - last) > self.max_median_step:
            self._unsettled = self.settle_ticks
        elif getattr(self, "_unsettled", 0) > 0:
            self._unsettled -= 1
        self._last_median = med

    def _residuals(self, x: Features) -> tuple[dict[str, float], float, float] | None:
        """Residual per member, group median and scale; None when the group cannot be judged.

        A tick asks twice, to score and then to learn, with the same readings and no learning in between:
        the second answer is the first one's (two medians and a MAD per group per tick, issue 10).
        """
        memo = self.__dict__.get("_memo")
        if memo is not None and memo[0] == x:
            return memo[1]
        judged = self._judge(x)
        self._memo = (dict(x), judged)
        return judged

    def _judge(self, x: Features) -> tuple[dict[str, float], float, float] | None:
        vals = _finite(x)
        if len(vals) < self.min_members:
            return None
        med = median(vals.values())
        if self.busy_floor is not None and med < self.busy_floor:
            return None
        if self._settling(med):
            return None
        off = self._offset
        resid = {k: v - med - off.get(k, 0.0) for k, v in vals.items()}
        # the spread that counts is of the residuals, once each member's usual offset is taken out: chips that
        # always differ by a few percent must not widen the scale a slow one is measured in
        rmed = median(resid.values())
        mad = median([abs(r - rmed) for r in resid.values()])
        scale = max(self.min_scale, self.rel_scale * abs(med), self._noise, _SIGMA_PER_MAD * mad)
        return resid, med, scale

    def _z(self, r: float, scale: float) -> float:
        if self.direction == "high":
            r = max(r, 0.0)
        elif self.direction == "low":
            r = max(-r, 0.0)
        return abs(r) / scale

    def score_many(self, x: Features, t: float | None = None) -> dict[str, float]:
        judged = self._residuals(x)
        if judged is None:
            return dict.fromkeys(x, 0.0)
        resid, _, scale = judged
        out = dict.fromkeys(x, 0.0)
        # _z inlined (a call per member per tick): the same quotient, so the same bits
        if self.direction == "high":
            out.update({k: r / scale if r > 0 else 0.0 for k, r in resid.items()})
        elif self.direction == "low":
            out.update({k: -r / scale if r < 0 else 0.0 for k, r in resid.items()})
        else:
            out.update({k: abs(r) / scale for k, r in resid.items()})
        return out

    def learn_one(self, x: Features, t: float | None = None) -> None:
        judged = self._residuals(x)
        self._memo = None  # what is learned now changes the next answer
        self._track(x)
        if judged is None:
            return
        resid, _, scale = judged
        warming = self._ticks < self.warmup
        a = max(self.alpha, 0.1) if warming else self.alpha
        abs_sum, n = 0.0, 0
        held = self.__dict__.setdefault("_held", {})
        suspect = self.learn_below * self.threshold_z
        for k, r in resid.items():
            if not warming and abs(r) / scale >= suspect:
                # a suspect member teaches us nothing about normal, for a bounded time: a member that stays
                # different for ``adapt_after`` ticks has a new normal (a swapped part, a new clock policy)
                held[k] = held.get(k, 0) + 1
                if held[k] < self.adapt_after:
                    continue
                r = math.copysign(min(abs(r), self.threshold_z * scale), r)
            elif held:
                held.pop(k, None)
            self._offset[k] = self._offset.get(k, 0.0) + a * r
            abs_sum += abs(r)
            n += 1
        if n:
            self._noise += a * (_SIGMA_PER_MEAN_ABS * abs_sum / n - self._noise)
        self._ticks += 1

    def baseline(self, x: Features) -> dict[str, float]:
        """What each member would read if it behaved like its peers (median plus its usual offset)."""
        vals = [v for v in x.values() if isinstance(v, (int, float)) and math.isfinite(v)]
        if not vals:
            return {}
        med = median(vals)
        return {k: med + self._offset.get(k, 0.0) for k in x}

    def forget(self, member: str) -> None:
        """Drop a member that left the group (a GPU gone, a node moved to another job)."""
        self._offset.pop(member, None)
        self._memo = None

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_memo"}  # a tick's answer, not state

    @property
    def threshold(self) -> float:
        return self.threshold_z

    @property
    def warm(self) -> bool:
        return self._ticks >= self.warmup
