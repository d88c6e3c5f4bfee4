"""Which Kafka offsets are safe to commit: only those whose effects are durable.

Processors consume with Faust's acks turned off and hand every event to the
:class:`AckLedger`. An event is acked (and so becomes committable) only when
(a) the sink has durably stored every row produced up to it, and (b) no open
window still needs it to be rebuilt after a crash. Faust then commits the
highest contiguous acked offset per partition. The order is the one
quix-streams uses: flush sinks, then commit offsets.

:func:`flush_then_ack` is the one place that rule is applied: if a flush
leaves any row unstored, nothing is acked; the rows wait in the sink and the
offsets stay uncommitted, so a crash meanwhile replays them from Kafka.

The rule holds only if a worker always resumes a partition from its committed
offset: :func:`replay_uncommitted_from_start` makes that true after every
rebalance, also for a partition nothing was committed for yet.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Mapping

if TYPE_CHECKING:
    from pipelines.sinks.clickhouse import ClickHouseSink, FlushResult


class AckLedger:
    def __init__(self, ack: Callable[[Any], Awaitable[Any]]) -> None:
        self._ack = ack
        #: (topic, partition) -> deque of (offset, event), in offset order
        self._pending: dict[tuple[str, int], deque] = {}
        #: (topic, partition) -> highest offset handed to the sink so far
        self._added_upto: dict[tuple[str, int], int] = {}
        #: (topic, partition) -> times it was revoked (dropped); an event read before the last one is stale
        self._epochs: dict[tuple[str, int], int] = {}

    def epoch(self, topic: str, partition: int) -> int:
        """The partition's generation: read it before handling an event, pass it to :meth:`hold`."""
        return self._epochs.get((topic, partition), 0)

    def hold(self, topic: str, partition: int, offset: int, event: Any, epoch: int | None = None) -> bool:
        """Keep ``event`` until its rows are stored; refused (False) if its partition was revoked since ``epoch``.

        An event of a revoked partition is never acked: Faust forgets the
        partition's committed offset on revoke, so its ack could commit past
        what an open window of the next owner still needs.
        """
        tp = (topic, partition)
        if epoch is not None and epoch != self._epochs.get(tp, 0):
            return False
        q = self._pending.get(tp)
        if q is None:
            q = self._pending[tp] = deque()
        q.append((offset, event))
        # a redelivered event (see pipelines/processors/loop.py) may come after higher offsets
        self._added_upto[tp] = max(offset, self._added_upto.get(tp, offset))
        return True

    def mark(self) -> dict[tuple[str, int], int]:
        """Snapshot of what the sink holds now; pass it to :meth:`release` once flushed."""
        return dict(self._added_upto)

    async def release(self, flushed: dict[tuple[str, int], int],
                      floor: Callable[[str, int], int | None]) -> int:
        """Ack events at or below ``flushed`` and below each partition's window floor."""
        acked = 0
        for tp, upto in flushed.items():
            q = self._pending.get(tp)
            if not q:
                continue
            lowest_needed = floor(*tp)
            while q and q[0][0] <= upto and (lowest_needed is None or q[0][0] < lowest_needed):
                _, event = q.popleft()
                await self._ack(event)
                acked += 1
        return acked

    def drop_partitions(self, tps: set[tuple[str, int]]) -> None:
        """Forget events of revoked partitions: the next owner re-reads them from the commit."""
        for tp in tps:
            self._pending.pop(tp, None)
            self._added_upto.pop(tp, None)
            self._epochs[tp] = self._epochs.get(tp, 0) + 1

    def pending(self) -> int:
        return sum(len(q) for q in self._pending.values())


async def flush_then_ack(sink: "ClickHouseSink", ledger: AckLedger,
                         floor: Callable[[str, int], int | None]) -> "FlushResult":
    """Store what the sink holds, then ack the events that made it, and only if all of it is stored.

    ``floor(topic, partition)`` is the oldest offset an open window still needs
    (None if none); it is read *before* the flush, so a window that closes while
    the insert runs keeps its offsets until its features are stored too.
    """
    mark = ledger.mark()
    floors = {tp: floor(*tp) for tp in mark}
    result = await sink.flush()
    if result.stored_all:
        await ledger.release(mark, lambda topic, partition: floors.get((topic, partition)))
    return result


def replay_uncommitted_from_start(consumer: Any, source_topics: Iterable[str]) -> None:
    """After every rebalance, read a never-committed source partition again from its beginning.

    The other half of the rule above: a worker resumes a partition from its
    committed offset, so what it read but had not stored is replayed. Faust
    seeks each assigned partition to its committed offset after a rebalance
    (``Consumer.perform_seek``), but aiokafka's ``seek_to_committed`` skips a
    partition whose committed offset is None or 0, leaving it wherever the
    fetcher was. Offsets stay uncommitted for a while here (an open 1-minute
    window holds them back), so the messages fetched but dropped by the
    rebalance (Faust clears its queues and skips the old generation's messages)
    were never read again: the worker that kept or took the partition went on
    from the fetch position, and one tick of those partitions was lost
    (issue 9, tests/pipelines/test_two_workers.py). This wraps the consumer's
    ``seek_to_committed`` so that such a partition of ``source_topics`` is
    sought to offset 0 (the broker's earliest, ``auto_offset_reset``, if that
    is gone); rows already stored are skipped by their resume point.

    It also stops Faust's fetch loop while it seeks. Faust resumes the flow
    of messages before it seeks stream partitions (a recovery resumes it for
    the changelogs), so its fetch loop can still be handing out a batch
    fetched at the old position (one waiting for room in a full stream
    buffer, say) when the seek resets the consumer's read offsets to the
    commits. The message handed out across the seek then set Faust's read
    offset back past the commit (one handed out after it would record the
    offsets below it as a gap, which Faust counts as acked), so the messages
    read again from the commit were dropped as already read: lost (issue 9,
    two workers with Faust's own buffer: 2,172 of 347,520 samples; node
    events: 1 of 133,440, tests/pipelines/test_two_workers_events.py).
    Stopped, the loop drops that batch (it is read again from the commit),
    and Faust sets the read offsets after this returns.
    """
    topics = set(source_topics)
    seek_committed = consumer.seek_to_committed

    async def seek_to_committed() -> Mapping[Any, int | None]:
        was_active = consumer.flow_active
        consumer.stop_flow()
        try:
            committed = await seek_committed()
            for tp, offset in committed.items():
                if tp.topic in topics and not (offset and offset > 0):
                    await consumer.seek(tp, 0)
        finally:
            if was_active:
                consumer.resume_flow()
        return committed

    consumer.seek_to_committed = seek_to_committed
