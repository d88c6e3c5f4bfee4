"""Heartbeats: store each one; their absence is judged elsewhere (absence detection)."""

from __future__ import annotations

from typing import Any

from pipelines import telemetry
from pipelines.context import PipelineContext
from pipelines.sinks.tables import HEARTBEATS
from schemas.codec import SchemaError, decode
from schemas.events import Heartbeat


class HeartbeatsProcessor:
    def __init__(self, ctx: PipelineContext, on_heartbeat=None) -> None:
        """``on_heartbeat(hb, partition)`` is called for every valid heartbeat (absence tracking)."""
        self.ctx = ctx
        self.on_heartbeat = on_heartbeat

    async def handle(self, topic: str, partition: int, offset: int, key: Any, value: Any) -> None:
        telemetry.RECEIVED.labels(topic).inc()
        try:
            hb = decode(value, Heartbeat, max_bytes=self.ctx.settings.max_message_bytes)
        except SchemaError as e:
            await self.ctx.dead_letter(topic, partition, offset, key, value, str(e))
            return
        self.ctx.node_partition[hb.node] = partition
        self.ctx.sink.add(HEARTBEATS.name, [(hb.ts, hb.node, hb.agent_version, len(hb.gpus),
                                             {k: int(v) for k, v in hb.collectors.items()})])
        for gpu in hb.gpus:
            if gpu.name:
                self.ctx.gpu_models[(hb.node, gpu.index)] = gpu.name
        if self.on_heartbeat is not None:
            self.on_heartbeat(hb, partition)
