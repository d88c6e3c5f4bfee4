"""Tier 1, the fast path: robust online z-scores for every series, vectorised in numpy.

Each series keeps an EWMA *level* and an EWMA of absolute deviation as its
*scale* (about one standard deviation). A new value scores
``|value - baseline| / scale``. Robustness comes from three habits:

- points already flagged are not learned into the level (so a fault does not
  become normal), for a bounded time: once a series has been flagged
  ``adapt_after`` times (a run that leaks by one for each normal point), it
  re-baselines on the current value (a lasting level shift, such as a job
  starting, becomes the new normal instead of alerting for hundreds of points);
- the scale has a floor, absolute (``min_scale``) and relative to the level
  (``rel_scale``), so a flat series does not turn every wiggle into infinity;
- with ``season_s`` set, each series also keeps a seasonal-naive profile
  (``season_bins`` EWMA levels across one season) learned from *every* point,
  and a value that matches either the recent level or the same phase of past
  seasons is normal.

All series of one detector live in flat arrays, and :meth:`step` scores and
learns a whole tick of them at once: the cost per sample is a fraction of a
microsecond (see ``bench/detector_cost.py``). Series of different families can
share one detector with their own parameters (``slots(keys, params)``), so a
node's whole tick is one call.

>>> d = RobustZScore(warmup=20)
>>> for i in range(50):
...     d.learn_one({"temp": 60.0 + (i % 3) * 0.5})
>>> d.score_one({"temp": 60.5}) < 3 < d.score_one({"temp": 75.0})
True
"""

from __future__ import annotations

import numpy as np

from pipelines.detect.base import Detector, Features, register

_SIGMA_PER_MAD = 1.2533  # mean absolute deviation -> standard deviation, for a normal law
_DIRECTIONS = {"up": 1.0, "down": -1.0, "both": 0.0}
_REWARM = 20  # points a re-baselined series learns its new scale before it is scored again
#: Parameters that may differ per series (given to :meth:`RobustZScore.slots`).
SERIES_PARAMS = ("alpha", "scale_alpha", "clip", "min_scale", "rel_scale", "warmup", "threshold_z",
                 "direction", "adapt_after", "seasonal")


@register
class RobustZScore(Detector):
    """EWMA level / absolute-deviation z-scores over many series at once.

    Parameters
    ----------
    alpha: weight of a new value in the level (memory of about 1/alpha samples).
    scale_alpha: weight of a new absolute deviation in the scale.
    clip: residuals beyond this many scales are clipped when learned.
    min_scale, rel_scale: floor of the scale, absolute and as a fraction of |level|.
    warmup: samples a series needs before it is scored.
    threshold_z: z at or above which a value is anomalous.
    direction: ``up``, ``down`` or ``both``: which side of the baseline counts.
    adapt_after: consecutive flagged samples after which a series learns again.
    season_s, season_bins: seasonal-naive profile (off when season_s is 0).
    seasonal: whether a series keeps the seasonal profile (when season_s is set). Families with and
      without one share a detector this way: one numpy call per node tick instead of one per family
      group (issue 10).
    flagged_scale: weight (relative to scale_alpha) with which flagged points widen the scale, their
      residual clipped at ``clip`` scales; 0 keeps flagged points out of the scale. A series flagged
      again and again (quantised, spiky, mostly zero) is noisier than it looked, not faulty each time.
    tail_decay: when > 0, each series remembers its largest recent deviation (decaying by this factor per
      point) and a value is anomalous only beyond it: a series with routine spikes alerts on a bigger one.
    seed: unused (the method is deterministic), kept for the shared contract.
    """

    name = "robust_zscore"

    def __init__(self, alpha: float = 0.02, scale_alpha: float = 0.02, clip: float = 4.0,
                 min_scale: float = 1e-3, rel_scale: float = 0.0, warmup: int = 60,
                 threshold_z: float = 6.0, direction: str = "both", adapt_after: int = 300,
                 season_s: float = 0.0, season_bins: int = 24, flagged_scale: float = 0.0, tail_decay: float = 0.0,
                 seasonal: bool = True, seed: int = 0) -> None:
        self.alpha = alpha
        self.scale_alpha = scale_alpha
        self.clip = clip
        self.min_scale = min_scale
        self.rel_scale = rel_scale
        self.warmup = warmup
        self.threshold_z = threshold_z
        self.direction = direction
        self.adapt_after = adapt_after
        self.season_s = season_s
        self.season_bins = season_bins
        self.flagged_scale = flagged_scale
        self.tail_decay = tail_decay
        self.seasonal = seasonal
        self.seed = seed
        self._defaults = self._series_params({})
        self._slot: dict = {}
        self._n = 0
        self._alloc(16)

    def _series_params(self, params: dict) -> np.ndarray:
        unknown = set(params) - set(SERIES_PARAMS)
        if unknown:
            raise ValueError(f"robust_zscore series parameters are {', '.join(SERIES_PARAMS)}; "
                             f"not {', '.join(sorted(unknown))}")
        p = {k: params.get(k, getattr(self, k)) for k in SERIES_PARAMS}
        if p["direction"] not in _DIRECTIONS:
            raise ValueError(f"direction must be 'up', 'down' or 'both', not {p['direction']!r}")
        if not (0 < p["alpha"] <= 1 and 0 < p["scale_alpha"] <= 1):
            raise ValueError("alpha and scale_alpha must be in (0, 1]")
        p["direction"] = _DIRECTIONS[p["direction"]]
        return np.array([float(p[k]) for k in SERIES_PARAMS])

    # -- storage ---------------------------------------------------------------------------
    _ARRAYS = ("_level", "_scale", "_count", "_flagged_run", "_params", "_season", "_season_seen", "_tail")

    def _alloc(self, capacity: int) -> None:
        def grow(name: str, shape: tuple, dtype) -> None:
            old = getattr(self, name, None)
            new = np.zeros(shape, dtype=dtype)
            if old is not None:
                new[: len(old)] = old
            setattr(self, name, new)

        grow("_level", (capacity,), np.float64)
        grow("_scale", (capacity,), np.float64)
        grow("_count", (capacity,), np.float64)
        grow("_flagged_run", (capacity,), np.float64)
        if self.tail_decay > 0:
            grow("_tail", (capacity,), np.float64)
        grow("_params", (capacity, len(SERIES_PARAMS)), np.float64)
        if self.season_s > 0:
            grow("_season", (capacity, self.season_bins), np.float64)
            grow("_season_seen", (capacity, self.season_bins), bool)
        p = self._params.T
        (self._alpha, self._salpha, self._clip, self._min, self._rel, self._warm, self._thr, self._dir,
         self._adapt, self._seasonal) = p  # views, one row per parameter

    def slots(self, keys: list, params: dict | None = None) -> np.ndarray:
        """Array positions of ``keys``, allocating new series (with ``params`` overriding the defaults)."""
        slot = self._slot
        out = np.empty(len(keys), dtype=np.intp)
        row = None
        for i, k in enumerate(keys):
            j = slot.get(k)
            if j is None:
                if row is None:
                    row = self._defaults if not params else self._series_params(params)
                j = slot[k] = self._n
                self._n += 1
                if self._n > len(self._level):
                    self._alloc(2 * len(self._level))
                self._params[j] = row
            out[i] = j
        return out

    def __getstate__(self) -> dict:
        state = {k: v for k, v in self.__dict__.items()
                 if k not in ("_alpha", "_salpha", "_clip", "_min", "_rel", "_warm", "_thr", "_dir", "_adapt",
                              "_seasonal")}
        n = self._n  # store only the used part of the arrays: checkpoints stay compact
        for k in self._ARRAYS:
            if k in state:
                state[k] = state[k][:n].copy()
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("seasonal", True)
        width = len(SERIES_PARAMS)
        if self._params.shape[1] < width:  # checkpointed before "seasonal": every series of a detector was
            pad = np.ones((len(self._params), width - self._params.shape[1]))
            self._params = np.hstack([self._params, pad])
            self._defaults = np.concatenate([self._defaults, np.ones(width - len(self._defaults))])
        self._alloc(max(16, 2 * self._n))

    # -- vectorised core --------------------------------------------------------------------
    def step(self, idx: np.ndarray | slice, values: np.ndarray, t: float | None = None,
             learn: bool = True) -> np.ndarray:
        """Score a tick of series (positions from :meth:`slots`, or a slice of them: series in a row are read and
        written as views, a dozen gathers and scatters fewer), then learn it. Returns z (0 while warming up)."""
        values = np.asarray(values, dtype=np.float64)
        level = self._level[idx]
        finite = np.isfinite(values)
        if not finite.all():  # a non-finite value is neither scored nor learned
            values = np.where(finite, values, level)
        resid = values - level
        bin_ = None
        if self.season_s > 0 and t is not None:
            bin_ = int((t % self.season_s) / self.season_s * self.season_bins) % self.season_bins
            seasonal = values - self._season[idx, bin_]
            use = self._season_seen[idx, bin_] & (np.abs(seasonal) < np.abs(resid))
            if use.any():
                resid = np.where(use, seasonal, resid)
        p = self._params[idx]
        scale = np.maximum(np.maximum(self._scale[idx], p[:, 3]), p[:, 4] * np.abs(level))
        if self.tail_decay > 0:  # only what exceeds the recent extremes counts
            scale = np.maximum(scale, self._tail[idx] / p[:, 6])
        absr = np.abs(resid)
        count = self._count[idx]
        z = absr / scale
        # the side that counts: direction 0 (both) takes any residual; +1 or -1 only a residual of its sign
        # (a zero residual has z 0 either way)
        z *= (count >= p[:, 5]) & (resid * p[:, 7] >= 0)
        if learn:
            self._learn(idx, values, resid, absr, scale, count, z, p, finite, bin_)
        return z

    def _learn(self, idx, values, resid, absr, scale, count, z, p, finite, bin_) -> None:
        """Learn a scored tick: the quiet path when it holds for every series, else the general one."""
        hot = absr >= p[:, 6] * scale
        warming = count < p[:, 5]
        if (not hot.any() and not warming.any() and count.all() and finite.all()
                and not self._flagged_run[idx].any()):
            self._learn_quiet(idx, values, resid, absr, scale, p, bin_)
        else:
            self._learn_general(idx, values, resid, absr, scale, count, p, finite, bin_, hot, warming)

    def _learn_general(self, idx, values, resid, absr, scale, count, p, finite, bin_, hot, warming) -> None:
        # an outlier on either side is not learned, whichever side is alerted on
        flagged = hot & ~warming
        # the flagged run leaks rather than resets, so a shift whose noise dips under the threshold now and
        # then still counts; at adapt_after the series re-baselines on the value (a regime change)
        run = np.where(flagged, self._flagged_run[idx] + 1, np.maximum(self._flagged_run[idx] - 1, 0))
        rebase = flagged & (run >= p[:, 8]) & finite
        self._flagged_run[idx] = np.where(rebase, 0, run)
        learn = ~flagged & finite
        lim = np.where(warming, np.inf, p[:, 2] * scale)  # no clipping while warming up
        r = np.minimum(np.maximum(resid, -lim), lim)
        a = np.where(warming, np.maximum(p[:, 0], 0.1), p[:, 0]) * learn
        first = count == 0
        if first.any():
            a[first] = 1.0
            r[first] = values[first] - self._level[idx][first]
        self._level[idx] += a * r
        if rebase.any():  # a new regime: start from its value, and re-learn its scale for a few points
            j = (np.arange(idx.start, idx.stop) if isinstance(idx, slice) else idx)[rebase]
            self._level[j] = values[rebase]
            self._count[j] = np.maximum(p[rebase, 5] - _REWARM, 0.0)
        sa = np.where(warming, np.maximum(p[:, 1], 0.1), p[:, 1]) * learn * ~first
        if self.flagged_scale > 0:  # flagged points widen the scale (clipped): a series flagged often is noisy
            sa = sa + p[:, 1] * self.flagged_scale * (flagged & finite & ~warming)
        self._scale[idx] += sa * (np.minimum(absr, lim) * _SIGMA_PER_MAD - self._scale[idx])
        self._count[idx] = np.where(rebase, self._count[idx], count + learn)
        if self.tail_decay > 0:
            self._tail[idx] = np.where(finite & ~warming, np.maximum(absr, self._tail[idx] * self.tail_decay),
                                       self._tail[idx])
        if bin_ is not None and values.size:
            # the seasonal profile learns every point, flagged or not: it is what says "this phase of the day
            # is normally high", and a phase that is never learned is flagged every day
            seen = self._season_seen[idx, bin_]
            cur = self._season[idx, bin_]
            upd = np.where(seen, cur + p[:, 0] * (values - cur), values)
            self._season[idx, bin_] = np.where(finite, upd, cur)
            self._season_seen[idx, bin_] = seen | (finite & (p[:, 9] > 0))  # never seen: never used

    def _learn_quiet(self, idx, values, resid, absr, scale, p, bin_) -> None:
        """:meth:`_learn` for the usual tick: every series warm, finite, and unflagged now and not in a flagged
        run. Then nothing is held back or re-baselined, and a dozen of the general path's array operations
        (each a fixed cost on a node's ~100 series) are not needed (issue 10)."""
        lim = p[:, 2] * scale
        self._level[idx] += p[:, 0] * np.minimum(np.maximum(resid, -lim), lim)
        self._scale[idx] += p[:, 1] * (np.minimum(absr, lim) * _SIGMA_PER_MAD - self._scale[idx])
        self._count[idx] += 1.0
        if self.tail_decay > 0:
            self._tail[idx] = np.maximum(absr, self._tail[idx] * self.tail_decay)
        if bin_ is not None and values.size:
            cur = self._season[idx, bin_]
            seen = self._season_seen[idx, bin_]
            self._season[idx, bin_] = np.where(seen, cur + p[:, 0] * (values - cur), values)
            self._season_seen[idx, bin_] = seen | (p[:, 9] > 0)

    def baseline(self, idx: np.ndarray) -> np.ndarray:
        """The current level of each series: the value a z-score is measured against."""
        return self._level[idx].copy()

    def thresholds(self, idx: np.ndarray) -> np.ndarray:
        return self._thr[idx].copy()

    def series_warm(self, idx: np.ndarray) -> np.ndarray:
        return self._count[idx] >= self._warm[idx]

    # -- River-style dict API ---------------------------------------------------------------
    def learn_one(self, x: Features, t: float | None = None) -> None:
        if x:
            self.step(self.slots(list(x)), np.fromiter(x.values(), float, len(x)), t, learn=True)

    def score_many(self, x: Features, t: float | None = None) -> dict[str, float]:
        if not x:
            return {}
        known = [k for k in x if k in self._slot]
        out = dict.fromkeys(x, 0.0)
        if known:
            idx = np.fromiter((self._slot[k] for k in known), np.intp, len(known))
            z = self.step(idx, np.fromiter((x[k] for k in known), float, len(known)), t, learn=False)
            out.update(zip(known, z.tolist()))
        return out

    @property
    def threshold(self) -> float:
        return self.threshold_z

    @property
    def warm(self) -> bool:
        return self._n > 0 and bool((self._count[: self._n] >= self._warm[: self._n]).any())
