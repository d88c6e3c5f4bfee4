"""The collector contract every source of node signals implements.

A collector is polled once per scrape and returns plain dict samples in the
``schemas.metrics.MetricSample`` shape (``gpu``, ``uuid``, ``metric``,
``value``, ``unit``, optional ``labels``). Plain dicts, not models: the agent's
hot path must cost almost nothing, and the pipeline validates anyway.

A collector never raises into the agent: ``collect`` may raise, and the runner
marks it unhealthy, logs once and carries on with the others.

Each collector module also declares a :class:`CollectorConfig` subclass (its
own settings, validated on their own), and registers the pair in
``agents.collectors.REGISTRY`` under :attr:`Collector.name`. Collectors that
need something another collector knows (the XID reader needs the PCI address
of each GPU; attribution needs each GPU's processes) share it through the
:class:`NodeContext`, never by importing each other.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

from pydantic import BaseModel, ConfigDict, Field

Sample = dict[str, Any]


class CollectorConfig(BaseModel):
    """Settings every collector has. Unknown keys are refused so typos surface at start."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    #: Seconds between this collector's polls; None means every scrape.
    interval_s: float | None = Field(default=None, gt=0, le=3600)


@dataclass
class GpuIdentity:
    """What the rest of the agent needs to know about one GPU that NVML found."""

    index: int
    uuid: str
    name: str = ""
    pci_bus_id: str = ""  # normalised, see schemas.xid.normalize_pci_bus_id
    memory_total_bytes: int = 0


@dataclass
class NodeContext:
    """Facts about this node that one collector learns and others use.

    ``gpus`` is filled by the NVML collector (and emptied of lost GPUs);
    ``gpu_pids`` maps a GPU index to the pids using it this scrape.
    """

    node: str
    #: Where collectors keep offsets and cursors across restarts (None: nowhere).
    state_dir: Path | None = None
    gpus: dict[int, GpuIdentity] = field(default_factory=dict)
    gpu_pids: dict[int, list[int]] = field(default_factory=dict)
    #: Every GPU ever found, lost ones included: an XID 79 names a GPU NVML no longer sees.
    seen_gpus: dict[str, GpuIdentity] = field(default_factory=dict)

    def set_gpus(self, gpus: list[GpuIdentity]) -> None:
        self.gpus = {g.index: g for g in gpus}
        self.seen_gpus.update({g.pci_bus_id: g for g in gpus if g.pci_bus_id})

    def gpu_by_pci(self, pci_bus_id: str) -> GpuIdentity | None:
        return self.seen_gpus.get(pci_bus_id)


class Collector(ABC):
    #: Registry name, used in config and in heartbeats' health map.
    name: ClassVar[str] = "collector"
    #: The settings model for this collector.
    config_model: ClassVar[type[CollectorConfig]] = CollectorConfig

    def __init__(self, config: CollectorConfig | None = None, context: NodeContext | None = None) -> None:
        self.config = config if config is not None else self.config_model()
        self.context = context if context is not None else NodeContext(node="localhost")

    def start(self) -> None:
        """Acquire resources (open NVML, files). Called once before the first collect."""

    @abstractmethod
    def collect(self, now: float) -> list[Sample]:
        """Return this scrape's samples. ``now`` is the scrape's epoch timestamp."""

    def events(self, now: float) -> list[dict[str, Any]]:
        """Discrete node events (``schemas.events.NodeEvent`` dicts) seen since the last call."""
        return []

    def logs(self, now: float) -> list[dict[str, Any]]:
        """Log records (``schemas.logs.LogRecord`` dicts) read since the last call."""
        return []

    def stats(self) -> dict[str, int]:
        """Counts a person would ask about: received, dropped (by reason), errors."""
        return {}

    def start_push(self, emit: Callable[[dict[str, Any]], None]) -> bool:
        """Deliver events through ``emit`` the moment they happen (from the collector's own thread)
        instead of through :meth:`events` at the next scrape. Return False when this collector
        cannot (the default); then the scrape collects its events as usual."""
        return False

    def stopping(self) -> None:
        """The agent is shutting down: the next scrape is the last, so hold nothing back."""

    def close(self) -> None:
        """Release resources. Called once at shutdown, after the last scrape."""
