"""The loop every processor runs in: one event at a time, nothing lets it die.

For each event: handle it (a bad one goes to the dead-letter topic with the
reason), checkpoint per-node state, hand the event to the ack ledger, and flush
when the sink is due. Acking is never done here: :func:`pipelines.commit.flush_then_ack`
acks an event only once every row derived from it is stored.

A message at or below the last offset this worker handled on its partition
is a *redelivery*: Faust seeks a partition back to its committed offset in some
cases (table recovery, a rebalance that keeps the partition) and hands over
again what was already handled. It is not handled twice (its samples would be
counted twice in their windows, issue 9 finding 5); its event is held for the
ledger like any other, so the offset is still acked once its rows are stored.
The positions are forgotten when a partition is revoked, so a partition that
comes back is read again from its commit.

An event whose partition is revoked while it is handled (the processor
awaits inside ``handle`` across the rebalance) is *stale*: the revoke dropped
the partition's state, so the event is neither acked nor allowed to leave state
behind. Its rows were staged (pipelines/staging.py) and are dropped, what it
made again is undone (``PipelineContext.discard_revoked_event``), and the next
owner re-reads it from the commit. The ledger's per-partition epoch tells.

A store that cannot answer a processor's question (where to resume a replayed
partition) is not the message's fault: the message is retried after a pause
instead of being dead-lettered, so consumption of that stream waits for the store.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust

from pipelines import telemetry
from pipelines.context import PipelineContext
from pipelines.staging import Stage
from pipelines.store import StoreError

log = logging.getLogger("gpuwatch.pipeline")

#: Longest pause between retries of a message whose handling needs an unreachable store.
STORE_RETRY_MAX_S = 2.0


def discard_stale(ctx: PipelineContext, processor: Any, msg: Any, key: Any, rows: Stage) -> None:
    """The event's partition was revoked while it was handled: drop its rows and what it made."""
    telemetry.REVOKED_IN_FLIGHT.labels(msg.topic).inc()
    log.info("%s[%d]@%d was revoked while handled: dropped (%d row batches); its next owner re-reads it",
             msg.topic, msg.partition, msg.offset, rows.discard())
    for name, arg in (("forget_partition", msg.partition), ("forget_partitions", {msg.partition})):
        forget = getattr(processor, name, None)  # the processor's own per-partition state (detectors, jobs)
        if forget is not None:
            forget(arg)
    node = key.decode(errors="replace") if isinstance(key, (bytes, bytearray)) else key
    ctx.discard_revoked_event(msg.topic, msg.partition, node if isinstance(node, str) else None)


async def handle_one(ctx: PipelineContext, processor: Any, msg: Any, key: Any, value: Any,
                     rows: Stage | None = None, epoch: int | None = None) -> None:
    """Handle one message; ``rows`` (its staged sink calls) are dropped before a retry redoes them.

    A message waiting for the store stops waiting once its partition is revoked
    (its ``epoch`` is gone): the next owner has it, and the caller discards it.
    """
    delay = 0.1
    while True:
        try:
            await processor.handle(msg.topic, msg.partition, msg.offset, key, value)
            return
        except StoreError as e:
            if rows is not None:
                rows.discard()
            if epoch is not None and ctx.ledger.epoch(msg.topic, msg.partition) != epoch:
                return
            telemetry.PROCESSOR_ERRORS.labels("store_unavailable").inc()
            log.warning("store unavailable handling %s[%d]@%d (%s); retrying in %.1fs",
                        msg.topic, msg.partition, msg.offset, e, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, STORE_RETRY_MAX_S)
            if epoch is not None and ctx.ledger.epoch(msg.topic, msg.partition) != epoch:
                return
        except Exception as e:  # never let one message kill the processor
            if epoch is not None and ctx.ledger.epoch(msg.topic, msg.partition) != epoch:
                return  # not ours any more: its next owner handles (or dead-letters) it
            telemetry.PROCESSOR_ERRORS.labels(type(processor).__name__).inc()
            log.exception("processor failed on %s[%d]@%d", msg.topic, msg.partition, msg.offset)
            await ctx.dead_letter(msg.topic, msg.partition, msg.offset, key, value,
                                  f"processing error: {type(e).__name__}: {e}", stage="process")
            return


def processor_loop(ctx: PipelineContext, processor: Any, checkpoints: Any | None = None, *,
                   flush_when_due: bool = True, backpressure: bool = True):
    """The Faust agent body for ``processor``; ``checkpoints.write(partition)`` after each event.

    The processor never waits for an insert: with ``flush_when_due`` it starts a flush once the
    sink is due (:meth:`PipelineContext.flush_soon`) and goes on handling batches while the
    insert runs; without it the flush timer stores its rows and acks its events (pipelines/app.py). Without
    ``backpressure`` (node events, heartbeats: few, and what pages) it does not wait for a slow
    store either: an XID must not queue behind an insert of bulk metrics (issue 11)."""

    async def loop(stream: faust.StreamT) -> None:
        async for event in stream.noack().events():
            msg = event.message
            tp = (msg.topic, msg.partition)
            epoch = ctx.ledger.epoch(*tp)
            last = ctx.read_offsets.get(tp)
            if last is not None and msg.offset <= last:
                telemetry.REDELIVERED.labels(msg.topic).inc()
            else:
                ctx.read_offsets[tp] = msg.offset
                with ctx.sink.staging() as rows:
                    await handle_one(ctx, processor, msg, event.key, event.value, rows, epoch)
                if ctx.ledger.epoch(*tp) != epoch:
                    discard_stale(ctx, processor, msg, event.key, rows)
                    continue
                rows.commit()
                if checkpoints is not None:
                    checkpoints.write(msg.partition)
            ctx.ledger.hold(msg.topic, msg.partition, msg.offset, event, epoch)
            try:
                if flush_when_due and ctx.sink.due():
                    ctx.flush_soon()
                if backpressure and ctx.sink.overloaded():
                    await ctx.backpressure()
            except Exception:  # a flush never raises for the store; anything else is a bug to see, not to die of
                telemetry.PROCESSOR_ERRORS.labels("flush").inc()
                log.exception("flush after %s[%d]@%d failed", msg.topic, msg.partition, msg.offset)
            # Let the event loop run what is ready before the next event. Taking the next event from a
            # full buffer does not suspend, so a processor draining a backlog would otherwise keep the
            # loop to itself: the fetched messages waiting to be handed over (a quiet node's breach among
            # them), node events, alert sends and the flush all waited for a pause in the backlog.
            await asyncio.sleep(0)
    return loop
