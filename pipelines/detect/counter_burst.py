"""Error counters judged as counts: is this many events in the last window plausible at the usual rate?

Correctable ECC errors, NVLink CRC errors and PCIe replays are rare events. A
z-score on their per-second rate is the wrong tool: the rate is zero almost
always, so its scale collapses to the floor, and a steady 4 errors/s sits only
a few "scales" above it. Counts are Poisson, so the right question is the tail
probability ``p = P(X >= k | rate0 * window)`` of the ``k`` events seen in the
last ``window_s`` seconds under the series' usual rate ``rate0``. The score is
``-log10(p)``; the threshold follows from an explicit false-alert budget
(``budget_per_1000h``: expected false alerts per series per 1,000 hours when
every second is one test), so ``threshold = -log10(budget / 3.6e6)``.

The usual rate is learned conservatively: events and exposure are summed with
exponential forgetting (``half_life_s``) over a prior of ``prior_rate`` for
``prior_s`` seconds, and the rate used is an upper estimate (mean plus two
standard errors), so a GPU with a chronic but steady error rate is not news
while its rate is still being learned. Windows that are flagged are not learned,
until ``adapt_after_s`` of flagging in a row (a lasting new rate becomes normal).

Features are per-second rates (the engine turns ``*_total`` counters into
rates); counts are ``rate x seconds since the key's last sample``.

>>> d = CounterBurst(window_s=10)
>>> t = 0.0
>>> for t in range(1, 700):
...     d.learn_one({"0/ecc": 1.0 if t % 300 == 0 else 0.0}, t=float(t))
>>> d.score_many({"0/ecc": 0.0}, t=700.0)["0/ecc"] < d.threshold
True
>>> for s in range(701, 704):
...     d.learn_one({"0/ecc": 4.0}, t=float(s))
>>> d.score_many({"0/ecc": 4.0}, t=704.0)["0/ecc"] > d.threshold
True
"""

from __future__ import annotations

import math
from collections import deque

from scipy.special import gammainc

from pipelines.detect.base import Detector, Features, register

TESTS_PER_1000H = 3.6e6


class _Series:
    """One counter's state. ``events``/``exposure`` are forgotten-weighted sums as of ``anchor_t``; time
    passing without events is folded in lazily (:meth:`settle`), so a quiet series costs almost nothing."""

    __slots__ = ("last_t", "first_t", "anchor_t", "events", "exposure", "recent", "flag_since")

    def __init__(self, t: float) -> None:
        self.last_t = self.first_t = self.anchor_t = t
        self.events = 0.0
        self.exposure = 0.0
        self.recent: deque = deque()  # (t, count) of non-zero counts inside the window
        self.flag_since: float | None = None

    def settle(self, t: float, decay_per_s: float, learn_time: bool = True) -> None:
        dt = t - self.anchor_t
        if dt <= 0:
            return
        keep = math.exp(-decay_per_s * dt)
        self.events *= keep
        self.exposure = self.exposure * keep + ((1 - keep) / decay_per_s if learn_time else 0.0)
        self.anchor_t = t

    def __getstate__(self):
        return (self.last_t, self.first_t, self.anchor_t, self.events, self.exposure, list(self.recent),
                self.flag_since)

    def __setstate__(self, s):
        (self.last_t, self.first_t, self.anchor_t, self.events, self.exposure, recent, self.flag_since) = s
        self.recent = deque(recent)


def poisson_tail_score(k: float, mu: float) -> float:
    """``-log10 P(X >= k)`` for X ~ Poisson(mu); 0 when k <= 0.

    >>> round(poisson_tail_score(4, 0.01), 1)
    9.4
    """
    if k <= 0:
        return 0.0
    p = float(gammainc(k, max(mu, 1e-12)))
    return -math.log10(p) if p > 0 else 300.0


@register
class CounterBurst(Detector):
    """Poisson tail score of the events of the last ``window_s`` seconds against the learned usual rate.

    Parameters
    ----------
    window_s: seconds of events counted.
    budget_per_1000h: false alerts allowed per series per 1,000 hours (sets the threshold).
    min_events: fewer events than this in the window never alert.
    prior_rate, prior_s: the usual rate assumed before data (events/s) and its weight in seconds.
    half_life_s: forgetting of the learned rate.
    warmup_s: seconds a series is observed before it is scored.
    adapt_after_s: flagged this long in a row, a series learns again.
    seed: unused (deterministic), kept for the shared contract.
    """

    name = "counter_burst"

    def __init__(self, window_s: float = 10.0, budget_per_1000h: float = 0.02, min_events: int = 3,
                 prior_rate: float = 0.001, prior_s: float = 120.0, half_life_s: float = 6 * 3600.0,
                 warmup_s: float = 60.0, adapt_after_s: float = 1800.0, seed: int = 0) -> None:
        if window_s <= 0 or budget_per_1000h <= 0:
            raise ValueError("window_s and budget_per_1000h must be positive")
        self.window_s = window_s
        self.budget_per_1000h = budget_per_1000h
        self.min_events = min_events
        self.prior_rate = prior_rate
        self.prior_s = prior_s
        self.half_life_s = half_life_s
        self.warmup_s = warmup_s
        self.adapt_after_s = adapt_after_s
        self.seed = seed
        self._series: dict[str, _Series] = {}
        self._warm = False

    def usual_rate(self, key: str, t: float | None = None) -> float:
        """Upper estimate of the key's usual rate (events/s): mean plus two standard errors."""
        s = self._series.get(key)
        ev, ex = 0.0, 0.0
        if s is not None:
            ev, ex = s.events, s.exposure
            if t is not None and t > s.anchor_t and s.flag_since is None:
                keep = math.exp(-self._decay * (t - s.anchor_t))
                ev, ex = ev * keep, ex * keep + (1 - keep) / self._decay
        n = ev + self.prior_rate * self.prior_s
        return (n + 2.0 * math.sqrt(n) + 1.0) / (ex + self.prior_s)

    @property
    def _decay(self) -> float:
        return math.log(2) / self.half_life_s

    def _score(self, k: str, s: _Series | None, v, t: float | None) -> tuple[float, float]:
        """(score, count of this sample)."""
        if s is None or t is None:
            return 0.0, 0.0
        c = 0.0
        if isinstance(v, (int, float)) and v > 0 and math.isfinite(v):
            dt = t - s.last_t
            c = float(round(v * (dt if dt > 0 else 1.0)))
        if not c and not s.recent:
            return 0.0, 0.0
        if t - s.first_t < self.warmup_s:
            return 0.0, c
        cut = t - self.window_s
        n = c + sum(cc for ts, cc in s.recent if ts > cut)
        if n < self.min_events:
            return 0.0, c
        span = min(self.window_s, t - s.first_t)
        return poisson_tail_score(n, self.usual_rate(k, t) * span), c

    def score_many(self, x: Features, t: float | None = None) -> dict[str, float]:
        series = self._series
        out = {}
        for k, v in x.items():
            s = series.get(k)
            # the usual sample: no events now and none in the window, so nothing to score
            out[k] = 0.0 if v == 0 and s is not None and not s.recent else self._score(k, s, v, t)[0]
        return out

    def learn_one(self, x: Features, t: float | None = None) -> None:
        if t is not None:
            self._observe(x, t, None)

    def score_then_learn(self, x: Features, t: float | None = None) -> dict[str, float]:
        """One pass: a series' score is worked out once, for the answer and for learning."""
        if t is None:
            return self.score_many(x, t)
        out: dict[str, float] = {}
        self._observe(x, t, out)
        return out

    def _observe(self, x: Features, t: float, out: dict[str, float] | None) -> None:
        """Learn ``x`` at ``t``; with ``out``, first put each series' score in it (as :meth:`score_many`)."""
        thr = self.threshold
        decay = self._decay
        series = self._series
        for k, v in x.items():
            s = series.get(k)
            if s is None:
                if out is not None:
                    out[k] = 0.0
                series[k] = _Series(t)
                earliest = self.__dict__.get("_earliest")
                if earliest is not None and t < earliest:
                    self._earliest = t
                continue
            if v == 0 and not s.recent:
                if out is not None:
                    out[k] = 0.0
                if s.flag_since is None:
                    s.last_t = t  # quiet: time is folded in lazily (what the general path below does for it)
                    continue
            score, c = self._score(k, s, v, t)  # 0.0 for a quiet series: its score above
            if out is not None:
                out[k] = score
            s.last_t = t
            if not c and not s.recent and s.flag_since is None:
                continue  # quiet: time is folded in lazily
            if c:
                s.recent.append((t, c))
            while s.recent and s.recent[0][0] <= t - self.window_s:
                s.recent.popleft()
            if score >= thr:
                if s.flag_since is None:
                    s.settle(t, decay)
                    s.flag_since = t
                if t - s.flag_since < self.adapt_after_s:
                    s.anchor_t = t  # flagged time and events are not learned
                    continue
            elif s.flag_since is not None:
                s.flag_since = None
                s.anchor_t = t
            s.settle(t, decay)
            s.events += c
        if not self._warm and series:
            # warm once its oldest series is warmup_s old: the oldest first time is kept, not looked for each tick
            earliest = self.__dict__.get("_earliest")
            if earliest is None:
                earliest = self._earliest = min(s.first_t for s in series.values())
            if t - earliest >= self.warmup_s:
                self._warm = True

    @property
    def threshold(self) -> float:
        return -math.log10(self.budget_per_1000h / TESTS_PER_1000H)

    @property
    def warm(self) -> bool:
        return self._warm
