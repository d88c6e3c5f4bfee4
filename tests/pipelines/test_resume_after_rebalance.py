"""After a rebalance a worker reads every partition again from its committed offset, also one never committed.

The loss in tests/pipelines/test_two_workers.py (issue 9): offsets stay uncommitted while an open
1-minute window needs them, so right after a start, or a join, most partitions have no committed
offset. At a rebalance Faust drops what it had fetched but not handled (it clears its queues and
skips the old generation's messages), then seeks every assigned partition back to its committed
offset. aiokafka's ``seek_to_committed`` does not seek a partition whose committed offset is None
or 0, so the worker that kept (or took) such a partition went on from the fetch position: the
dropped messages (one tick of every such partition) were never handled by anyone.

These tests drive Faust's real consumer (``perform_seek``, what table recovery calls after every
rebalance) with only the broker round-trips replaced, so they need no broker.
"""

from __future__ import annotations

import asyncio

import faust
from faust.types import TP

from pipelines.commit import replay_uncommitted_from_start

SOURCE = "gpuwatch.metrics.v1"
CHANGELOG = "gpuwatch-pipeline-detectors-changelog"


def _consumer_after_a_rebalance(committed: dict[TP, int | None]):
    """Faust's consumer whose broker answers ``committed``; records where it seeks each partition."""
    app = faust.App("resume-test", broker="kafka://127.0.0.1:1", store="memory://")
    consumer = app.consumer
    fetch_position = {tp: 57 for tp in committed}  # where the fetcher was when the rebalance came

    class Broker:
        async def seek_to_committed(self):
            for tp, offset in committed.items():
                if offset and offset > 0:  # aiokafka: AIOKafkaConsumer.seek_to_committed
                    fetch_position[tp] = offset
            return dict(committed)

        def seek(self, tp, offset):  # aiokafka: AIOKafkaConsumer.seek
            fetch_position[tp] = offset

    consumer._thread = Broker()
    return consumer, fetch_position


def test_faust_alone_leaves_a_never_committed_partition_where_the_fetcher_was():
    """The mechanism of the loss, as the libraries behave (this is why the fix exists)."""
    never, committed = TP(SOURCE, 3), TP(SOURCE, 4)
    consumer, position = _consumer_after_a_rebalance({never: None, committed: 42})
    asyncio.run(consumer.perform_seek())
    assert position == {never: 57, committed: 42}  # offsets below 57 of partition 3: dropped, never read again


def test_a_never_committed_source_partition_is_read_again_from_its_beginning():
    never, zero, committed = TP(SOURCE, 3), TP(SOURCE, 5), TP(SOURCE, 4)
    changelog = TP(CHANGELOG, 3)
    consumer, position = _consumer_after_a_rebalance({never: None, zero: 0, committed: 42, changelog: None})
    replay_uncommitted_from_start(consumer, {SOURCE})
    asyncio.run(consumer.perform_seek())
    assert position == {never: 0, zero: 0, committed: 42, changelog: 57}  # tables' changelogs are Faust's own
    # Faust reads on from there without treating the jump back as a gap of acked offsets
    assert consumer._read_offset[never] is None and consumer._committed_offset[committed] == 42


class _Record:
    """What aiokafka's getmany returns for one message (only what Faust reads)."""

    def __init__(self, tp: TP, offset: int) -> None:
        self.topic, self.partition, self.offset = tp.topic, tp.partition, offset
        self.timestamp, self.timestamp_type, self.headers, self.key, self.value = 0, 0, [], b"n", b"{}"
        self.checksum, self.serialized_key_size, self.serialized_value_size = None, 1, 2


def _fetch_across_a_seek(replay: bool) -> list[int]:
    """Faust's real fetch loop (``Consumer._drain_messages``) hands out a batch fetched at the old
    position (offsets 57..66, each waiting a moment, as for room in a full stream buffer) while
    table recovery seeks the partition back to its commit (42); then the fetcher reads from 42.
    Returns the offsets handed to the processor (Faust's stream buffer), in order."""
    return asyncio.run(asyncio.wait_for(_fetch_across_a_seek_async(replay), 10))


async def _fetch_across_a_seek_async(replay: bool) -> list[int]:
    tp = TP(SOURCE, 3)
    app = faust.App("resume-test", broker="kafka://127.0.0.1:1", store="memory://")  # on this loop
    app.topics._acking_topics.add(SOURCE)
    consumer = app.consumer
    consumer._active_partitions = {tp}
    consumer._read_offset[tp] = 56
    consumer._committed_offset[tp] = 42
    seeking = asyncio.Event()
    batches = [{tp: [_Record(tp, o) for o in range(57, 67)]}]

    class Broker:
        async def getmany(self, active_partitions, timeout):
            if batches:
                return batches.pop(0)
            await asyncio.sleep(0.01)
            return {}

        def highwater(self, tp):
            return 100

        async def seek_to_committed(self):
            seeking.set()
            await asyncio.sleep(0.05)  # the round trip to the group coordinator
            batches.append({tp: [_Record(tp, o) for o in range(42, 67)]})  # read again from the commit
            return {tp: 42}

    consumer._thread = Broker()
    handed: list[int] = []

    async def on_message(message):
        handed.append(message.offset)
        if message.offset == 58:
            await seeking.wait()
        await asyncio.sleep(0.01)

    consumer.callback = on_message
    if replay:
        replay_uncommitted_from_start(consumer, {SOURCE})
    fetcher = faust.Service()
    loop = asyncio.create_task(consumer._drain_messages(fetcher))
    await asyncio.sleep(0.015)  # the loop is handing out the stale batch
    await consumer.perform_seek()
    await asyncio.sleep(1.0)  # the fetcher reads from the commit
    fetcher._stopped.set()
    if loop.done():
        loop.result()  # the fetch loop's own error, if it failed
    loop.cancel()
    return handed


def test_faust_alone_drops_what_it_reads_again_after_a_seek_that_came_mid_batch():
    """The mechanism of the loss with Faust's own stream buffer (two workers, issue 9): the stale
    message whose hand-out straddles the seek sets Faust's read offset back past the commit, so the
    messages read again from the commit are dropped as already read (no worker handles 42..56)."""
    handed = _fetch_across_a_seek(replay=False)
    assert not set(range(42, 57)) & set(handed), handed


def test_the_fetch_loop_stops_while_partitions_are_sought_so_nothing_is_skipped():
    handed = _fetch_across_a_seek(replay=True)
    assert set(range(42, 67)) <= set(handed), sorted(set(range(42, 67)) - set(handed))
