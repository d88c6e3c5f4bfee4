"""Tier 2: one GPU's metric vector scored as a whole, with a River detector.

Some failures show in no single metric but in their combination: power high
while utilisation is low, clocks down while temperature is normal. Each GPU
gets its own scaled River detector (``HalfSpaceTrees`` behind a
``StandardScaler`` and a logistic squash into the unit box, or a linear
``OneClassSVM`` behind a ``StandardScaler``) and a
running quantile of its own scores: a score at or above the ``q`` quantile
(times ``margin``) is anomalous.

Flagged points are *not learned*, so a developing fault does not become the
new normal; but after ``adapt_after`` flagged points in a row the detector
learns again, so a lasting change of regime (a new job with another profile)
stops alerting instead of alerting forever.

A metric missing from one observation is filled with its last value; a new
metric is carried along by the scaler but not by already-built trees.

>>> import random
>>> rng = random.Random(1)
>>> d = GpuMultivariate(window_size=50, warmup=200, seed=1)
>>> for _ in range(400):
...     u = 90 + rng.gauss(0, 1)
...     d.learn_one({"util": u, "power": 100 + 6 * u + rng.gauss(0, 5)})
>>> d.score_one({"util": 90.0, "power": 640.0}) < d.score_one({"util": 5.0, "power": 640.0})
True
"""

from __future__ import annotations

import math

from river import anomaly, compose, preprocessing, stats

from pipelines.detect.base import Detector, Features, register


def squash(x: dict[str, float]) -> dict[str, float]:
    """Standardised values into (0, 1), the box HalfSpaceTrees splits: the normal bulk spreads over the
    middle and anything far out lands at the edges, where normal data leaves no mass."""
    return {k: 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, v)) / 2.0)) for k, v in x.items()}


@register
class GpuMultivariate(Detector):
    """A scaled River anomaly detector per GPU, with quantile thresholding.

    Parameters
    ----------
    method: ``hst`` (HalfSpaceTrees) or ``ocsvm`` (OneClassSVM).
    n_trees, height, window_size: HalfSpaceTrees' parameters.
    nu: OneClassSVM's parameter.
    q, margin: anomalous when score >= margin x running q-quantile of scores.
    warmup: learned points before scores count.
    adapt_after: flagged points in a row after which it learns again.
    seed: for the trees.
    """

    name = "gpu_multivariate"

    def __init__(self, method: str = "hst", n_trees: int = 10, height: int = 6, window_size: int = 100,
                 nu: float = 0.02, q: float = 0.995, margin: float = 1.0, warmup: int = 300,
                 adapt_after: int = 60, seed: int = 0) -> None:
        if method not in ("hst", "ocsvm"):
            raise ValueError(f"method must be 'hst' or 'ocsvm', not {method!r}")
        self.method = method
        self.n_trees = n_trees
        self.height = height
        self.window_size = window_size
        self.nu = nu
        self.q = q
        self.margin = margin
        self.warmup = warmup
        self.adapt_after = adapt_after
        self.seed = seed
        if method == "hst":
            self._model = compose.Pipeline(
                preprocessing.StandardScaler(), compose.FuncTransformer(squash),
                anomaly.HalfSpaceTrees(n_trees=n_trees, height=height, window_size=window_size, seed=seed))
        else:
            self._model = compose.Pipeline(preprocessing.StandardScaler(), anomaly.OneClassSVM(nu=nu))
        self._quantile = stats.Quantile(q)
        self._last: dict[str, float] = {}
        self._mean: dict[str, float] = {}
        self._dev: dict[str, float] = {}
        self._n = 0
        self._run = 0

    def _complete(self, x: Features) -> dict[str, float]:
        full = dict(self._last)
        full.update((k, float(v)) for k, v in x.items() if isinstance(v, (int, float)) and math.isfinite(v))
        return full

    def score_many(self, x: Features, t: float | None = None) -> dict[str, float]:
        full = self._complete(x)
        if not full:
            return {"multivariate": 0.0}
        s = self._model.score_one(full)
        return {"multivariate": s if math.isfinite(s) else 0.0}

    def learn_one(self, x: Features, t: float | None = None) -> None:
        self.observe(x)

    def observe(self, x: Features) -> tuple[float, bool]:
        """Score ``x``, then learn it unless it is anomalous; returns (score, anomalous)."""
        full = self._complete(x)
        if not full:
            return 0.0, False
        score = self._model.score_one(full)
        score = score if math.isfinite(score) else 0.0
        # a score of 0 is never anomalous: on a constant series every score and so the threshold is 0
        flagged = self.warm and score > 0 and score >= self.threshold
        self._run = self._run + 1 if flagged else 0
        if not flagged or self._run >= self.adapt_after:
            self._model.learn_one(full)
            self._n += 1
            for k, v in full.items():
                m = self._mean.get(k)
                if m is None:
                    self._mean[k], self._dev[k] = v, 0.0
                else:
                    a = 0.1 if self._n < self.warmup else 0.01
                    self._mean[k] = m + a * (v - m)
                    self._dev[k] += a * (abs(v - m) - self._dev[k])
        if self._n > self.window_size:  # the trees score meaningfully only after their first window
            self._quantile.update(score)
        self._last = full
        return score, flagged

    def contributions(self, x: Features) -> list[tuple[str, float, float, float]]:
        """Features ranked by how far they sit from their usual value: (name, value, baseline, z)."""
        out = []
        for k, v in x.items():
            if k in self._mean and isinstance(v, (int, float)) and math.isfinite(v):
                scale = max(1.2533 * self._dev[k], 1e-3 * abs(self._mean[k]), 1e-9)
                out.append((k, float(v), self._mean[k], abs(v - self._mean[k]) / scale))
        return sorted(out, key=lambda r: -r[3])

    @property
    def threshold(self) -> float:
        q = self._quantile.get()
        return math.inf if q is None else self.margin * q

    @property
    def warm(self) -> bool:
        return self._n >= self.warmup
