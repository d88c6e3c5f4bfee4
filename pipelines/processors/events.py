"""Node events (XID, SXID, log-derived criticals): store them, and alert on the serious ones."""

from __future__ import annotations

from typing import Any, Callable

from pipelines import telemetry
from pipelines.context import PipelineContext
from pipelines.decide import Condition, IncidentBook
from pipelines.sinks.tables import NODE_EVENTS
from schemas.alerts import Evidence
from schemas.codec import SchemaError, decode
from schemas.events import NodeEvent

#: How long an event-born alert stays firing after its last occurrence.
KEEP_FIRING_S = {"critical": 1800.0, "warning": 600.0, "info": 300.0}

_NAMES = {"xid": "GpuXidError", "sxid": "NvSwitchSxidError", "log": "CriticalLogPattern",
          "agent": "AgentNotice", "health": "GpuHealthCheckFailed"}


def event_condition(ev: NodeEvent, database: str = "gpuwatch") -> Condition | None:
    """The alert condition an event raises; info-level events are stored, not alerted."""
    if ev.severity == "info":
        return None
    labels = {"node": ev.node, "severity": ev.severity}
    if ev.gpu >= 0:
        labels["gpu"] = str(ev.gpu)
    if ev.source in ("xid", "sxid"):
        labels[ev.source] = str(ev.code)
    elif ev.title:
        labels["event"] = ev.title[:64]
    annotations = {"summary": f"{ev.source.upper()} {ev.code} on {ev.node}" + (f" GPU {ev.gpu}" if ev.gpu >= 0 else "")
                   + (f": {ev.title}" if ev.title else ""),
                   "action": ev.action, "message": ev.message[:1024]}
    if ev.pci_bus_id:
        annotations["pci_bus_id"] = ev.pci_bus_id
    query = (f"SELECT ts, gpu, source, code, severity, action, title, message FROM {database}.node_events "
             f"WHERE node = '{ev.node}' AND ts >= fromUnixTimestamp64Milli({int((ev.ts - 3600) * 1000)}) ORDER BY ts")
    return Condition(
        alertname=_NAMES.get(ev.source, "NodeEvent"), labels=labels, ts=ev.ts, severity=ev.severity,
        keep_firing_for_s=KEEP_FIRING_S[ev.severity], annotations=annotations,
        evidence=[Evidence(metric=f"{ev.source}_{ev.code}", value=float(ev.code), detail=ev.message[:1024])],
        evidence_query=query, source=ev.source, node=ev.node, channel="events",
    )


def event_row(ev: NodeEvent) -> tuple:
    return (ev.ts, ev.node, ev.gpu, ev.source, ev.code, ev.severity, ev.action, ev.title, ev.message,
            ev.pci_bus_id, dict(ev.labels))


class EventsProcessor:
    def __init__(self, ctx: PipelineContext, *,
                 restore_book: Callable[[str], IncidentBook | None] | None = None) -> None:
        self.ctx = ctx
        self.restore_book = restore_book

    async def handle(self, topic: str, partition: int, offset: int, key: Any, value: Any) -> None:
        telemetry.RECEIVED.labels(topic).inc()
        try:
            ev = decode(value, NodeEvent, max_bytes=self.ctx.settings.max_message_bytes)
        except SchemaError as e:
            await self.ctx.dead_letter(topic, partition, offset, key, value, str(e))
            return
        self.ctx.node_partition.setdefault(ev.node, partition)
        await self.record(ev)

    async def record(self, ev: NodeEvent) -> None:
        """Store an event and decide on it; also used for events derived from logs."""
        self.ctx.sink.add(NODE_EVENTS.name, [event_row(ev)])
        cond = event_condition(ev, self.ctx.sink.store.database)
        if cond is not None:
            await self.ctx.decide(ev.node, ev.ts, [cond], "events", self.restore_book, clears=False)
