"""The agent's heartbeat: proof of life, GPU inventory and collector health, every few seconds.

The pipeline alerts on a node whose heartbeats stop, so the heartbeat is sent
on its own schedule even when every collector is failing; its ``collectors``
map says which ones are, and ``gpus`` lists the GPUs NVML still sees (a GPU
that fell off the bus leaves the inventory).
"""

from __future__ import annotations

from agents import __version__
from agents.collectors.base import NodeContext


def build_heartbeat(context: NodeContext, now: float, interval_s: float, health: dict[str, bool],
                    labels: dict[str, str] | None = None) -> dict:
    """A ``schemas.events.Heartbeat`` as a plain dict."""
    gpus = [{"index": g.index, "uuid": g.uuid[:96], "name": g.name[:128], "pci_bus_id": g.pci_bus_id[:32],
             "memory_total_bytes": max(0, int(g.memory_total_bytes))}
            for g in sorted(context.gpus.values(), key=lambda g: g.index)]
    hb = {"v": 1, "kind": "heartbeat", "node": context.node, "ts": now, "agent_version": __version__,
          "interval_s": float(interval_s), "gpus": gpus, "collectors": dict(health)}
    if labels:
        hb["labels"] = dict(labels)
    return hb
