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
