"""Node events (XID, SXID, log-derived criticals) and agent heartbeats.

Events are discrete facts, not gauges: an XID 79 happened at one moment on one
GPU, and it carries a recommended action for the operator.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.base import EpochSeconds, Labels, NodeId, WireModel

EventSeverity = Literal["info", "warning", "critical"]
Action = Literal["none", "restart_app", "reset_gpu", "reboot", "inspect_hw", "check_job", "drain_node"]


class NodeEvent(WireModel):
    v: Literal[1] = 1
    kind: Literal["event"] = "event"
    node: NodeId
    ts: EpochSeconds
    source: Literal["xid", "sxid", "log", "agent", "health"] = "xid"
    code: int = Field(default=0, ge=0, description="XID/SXID number, 0 where none applies")
    gpu: int = Field(default=-1, ge=-1, le=1023)
    pci_bus_id: str = Field(default="", max_length=32)
    severity: EventSeverity = "warning"
    action: Action = "none"
    title: str = Field(default="", max_length=256)
    message: str = Field(default="", max_length=4096)
    labels: Labels = Field(default_factory=dict)


class GpuInventory(WireModel):
    index: int = Field(ge=0, le=1023)
    uuid: str = Field(max_length=96)
    name: str = Field(default="", max_length=128)
    pci_bus_id: str = Field(default="", max_length=32)
    memory_total_bytes: int = Field(default=0, ge=0)


class Heartbeat(WireModel):
    """Periodic proof of life. Its *absence* is what flags a silent node."""

    v: Literal[1] = 1
    kind: Literal["heartbeat"] = "heartbeat"
    node: NodeId
    ts: EpochSeconds
    agent_version: str = Field(max_length=64)
    interval_s: float = Field(gt=0, le=3600)
    gpus: list[GpuInventory] = Field(default_factory=list, max_length=1024)
    collectors: dict[str, bool] = Field(default_factory=dict, description="collector name -> healthy")
    labels: Labels = Field(default_factory=dict)
