"""The one contract every detector follows, and the registry that names them.

A detector, in the manner of River's anomaly detectors, learns what is normal
from one observation at a time and scores how abnormal an observation is:

- ``learn_one(x, t=None)`` updates state; ``score_one(x, t=None)`` returns a
  float, higher meaning more anomalous, without changing state.
- ``x`` is a dict of feature name -> float. Features may appear or disappear
  between calls; a detector must neither crash nor give a non-finite score.
- ``t`` is the observation's event time in epoch seconds, for detectors that
  reason about time (forecasts, absence). Others ignore it.
- ``score_many(x, t)`` gives one score per *subject* (a series, a peer, a
  check), so a pipeline can say which one was anomalous; ``score_one`` is the
  highest of them.
- ``threshold`` is the score at or above which the detector calls a subject
  anomalous; ``warm`` says whether it has learned enough to be trusted. A
  pipeline must not alert on a detector that is not warm.

Configuration goes in through the constructor and is stored as given, with a
``seed`` where randomness is involved, so ``clone()`` rebuilds a fresh
detector from the same parameters. Detectors are plain picklable objects.

>>> sorted(registered())[:2]
['absence', 'counter_burst']
>>> make_detector("robust_zscore", warmup=5).warm
False
"""

from __future__ import annotations

import abc
import inspect
import math
from typing import Any, ClassVar, TypeVar

Features = dict[str, float]

_REGISTRY: dict[str, type["Detector"]] = {}

D = TypeVar("D", bound=type["Detector"])


class Detector(abc.ABC):
    """Base class: ``learn_one``/``score_one`` (higher = more anomalous), registered by ``name``."""

    #: The name a detector is registered and configured under, e.g. ``robust_zscore``.
    name: ClassVar[str] = ""

    @abc.abstractmethod
    def learn_one(self, x: Features, t: float | None = None) -> None:
        """Update what is normal with one observation."""

    def score_one(self, x: Features, t: float | None = None) -> float:
        """How anomalous ``x`` is, as one number: the highest subject score (0.0 if none)."""
        scores = self.score_many(x, t)
        return max(scores.values(), default=0.0)

    @abc.abstractmethod
    def score_many(self, x: Features, t: float | None = None) -> dict[str, float]:
        """One score per subject (series, peer or check) present in ``x``."""

    def score_then_learn(self, x: Features, t: float | None = None) -> dict[str, float]:
        """``score_many(x, t)``, then ``learn_one(x, t)``: one tick, as the engine takes it. A detector may
        do both in one pass (the second would repeat the first's work), with the same outcome."""
        scores = self.score_many(x, t)
        self.learn_one(x, t)
        return scores

    @property
    @abc.abstractmethod
    def threshold(self) -> float:
        """Score at or above which a subject counts as anomalous."""

    @property
    @abc.abstractmethod
    def warm(self) -> bool:
        """Whether the detector has learned enough for its scores to be trusted."""

    def is_anomalous(self, score: float) -> bool:
        return self.warm and math.isfinite(score) and score >= self.threshold

    # -- configuration -------------------------------------------------------------------
    def _get_params(self) -> dict[str, Any]:
        """Constructor parameters, read back from the attributes they were stored in."""
        sig = inspect.signature(type(self).__init__)
        return {p: getattr(self, p) for p in sig.parameters if p != "self"}

    def clone(self) -> "Detector":
        """A fresh, untrained detector with the same configuration."""
        return type(self)(**self._get_params())

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._get_params().items())
        return f"{type(self).__name__}({params})"


def register(cls: D) -> D:
    """Class decorator: make a detector available by its ``name``."""
    if not cls.name:
        raise TypeError(f"{cls.__name__} needs a class attribute 'name' to be registered")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise TypeError(f"detector name {cls.name!r} is already taken by {_REGISTRY[cls.name].__name__}")
    _REGISTRY[cls.name] = cls
    return cls


def registered() -> dict[str, type[Detector]]:
    """Every registered detector class, by name."""
    return dict(_REGISTRY)


def detector_class(name: str) -> type[Detector]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"no detector named {name!r}; registered detectors are "
                         f"{', '.join(sorted(_REGISTRY))}") from None


def make_detector(name: str, **params: Any) -> Detector:
    """Build a registered detector from its name and constructor parameters.

    A parameter the detector does not take is refused with a sentence that says which.
    """
    cls = detector_class(name)
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = set(params) - accepted
    if unknown:
        raise ValueError(f"detector {name!r} does not take {', '.join(sorted(unknown))}; "
                         f"its parameters are {', '.join(sorted(accepted))}")
    return cls(**params)


def finite(v: float, default: float = 0.0) -> float:
    """``v`` if it is a finite float, else ``default``: scores must never be NaN or inf."""
    return v if isinstance(v, (int, float)) and math.isfinite(v) else default

