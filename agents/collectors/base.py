"""The collector contract every source of node signals implements.

A collector is polled once per scrape and returns plain dict samples in the
``schemas.metrics.MetricSample`` shape (``gpu``, ``uuid``, ``metric``,
``value``, ``unit``, optional ``labels``). Plain dicts, not models: the agent's
hot path must cost almost nothing, and the pipeline validates anyway.

A collector never raises into the agent: ``collect`` may raise, and the runner
marks it unhealthy, logs once and carries on with the others.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

Sample = dict[str, Any]


class Collector(ABC):
    #: Registry name, used in config and in heartbeats' health map.
    name: str = "collector"

    def start(self) -> None:
        """Acquire resources (open NVML, files). Called once before the first collect."""

    @abstractmethod
    def collect(self, now: float) -> list[Sample]:
        """Return this scrape's samples. ``now`` is the scrape's epoch timestamp."""

    def events(self, now: float) -> list[dict[str, Any]]:
        """Discrete node events (``schemas.events.NodeEvent`` dicts) seen since the last call."""
        return []

    def close(self) -> None:
        """Release resources. Called once at shutdown."""
