"""The metrics processor's buffer: a partition that keeps up is served before other partitions' backlog.

Faust buffers a topic for its processor in one FIFO over all partitions. While a
worker drained a backlog on five partitions, a breach on the sixth waited behind
thousands of their batches (issue 11: p99 395 s; 70 s with the backlog kept off
the trial's partition). The pipeline's metrics topic uses a buffer that keeps
one queue per partition, pauses fetching a partition once it has its share
waiting, and serves partitions that keep up first.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace as NS

import faust

from pipelines.processors.fair_buffer import PartitionFairTopic


def _event(partition: int, offset: int):
    return NS(message=NS(partition=partition, offset=offset))


def _buffer(topic):
    """The queue the processor reads, as Faust's agent builds it (clones of the declared topic)."""
    app = topic.app

    @app.agent(topic)
    async def process(stream):  # pragma: no cover - never started
        async for _ in stream:
            pass

    return process.channel_iterator.clone(is_iterator=True).queue


def _fill(queue, paused: list[int]):
    for offset in range(40):
        for p in (1, 2, 3, 4, 5):
            queue.put_nowait_enhanced(_event(p, offset), on_pressure_high=lambda p=p: paused.append(p),
                                      on_pressure_drop=lambda: None)
    queue.put_nowait_enhanced(_event(0, 0), on_pressure_high=lambda: paused.append(0), on_pressure_drop=lambda: None)


def test_a_batch_from_a_partition_that_keeps_up_goes_before_the_backlog_of_the_others():
    async def scenario():
        app = faust.App("fair-buffer-test", broker="kafka://127.0.0.1:1")
        queue = _buffer(PartitionFairTopic(app, topics=["m"], partitions=6, maxsize=1024, per_partition=8))
        paused: list[int] = []
        _fill(queue, paused)
        first = queue.get_nowait()
        return first, paused, [queue.get_nowait().message.partition for _ in range(5)]

    first, paused, after = asyncio.run(scenario())
    assert first.message.partition == 0  # not the 201st
    assert sorted(paused) == [1, 2, 3, 4, 5]  # the backlogged partitions stop being fetched; partition 0 does not
    assert sorted(after) == [1, 2, 3, 4, 5]  # then the backlog, in turn


def test_order_within_a_partition_is_kept_and_paused_partitions_resume_once_drained():
    async def scenario():
        app = faust.App("fair-buffer-test-2", broker="kafka://127.0.0.1:1")
        queue = _buffer(PartitionFairTopic(app, topics=["m"], partitions=6, maxsize=1024, per_partition=8))
        resumed: list[int] = []
        for offset in range(20):
            for p in (1, 2):
                queue.put_nowait_enhanced(_event(p, offset), on_pressure_high=lambda: None,
                                          on_pressure_drop=lambda p=p: resumed.append(p))
        seen: dict[int, list[int]] = {1: [], 2: []}
        while not queue.empty():
            ev = queue.get_nowait()
            seen[ev.message.partition].append(ev.message.offset)
        return seen, resumed

    seen, resumed = asyncio.run(scenario())
    assert seen == {1: list(range(20)), 2: list(range(20))}
    assert sorted(resumed) == [1, 2]


def test_a_partition_paused_before_a_rebalance_is_fetched_again_and_keeps_its_share_after_it():
    """A rebalance clears the buffer (Faust drops the old generation's batches). A partition paused
    before it had its batches dropped, not taken: the buffer resumes fetching it at once and bounds
    it again, instead of believing it still paused and letting it fill without limit until it drains."""
    async def scenario():
        app = faust.App("fair-buffer-test-3", broker="kafka://127.0.0.1:1")
        queue = _buffer(PartitionFairTopic(app, topics=["m"], partitions=6, maxsize=1024, per_partition=8))
        app.flow_control.resume()
        paused, resumed = [], []

        def fetch(offsets):
            for offset in offsets:
                queue.put_nowait_enhanced(_event(1, offset), on_pressure_high=lambda: paused.append(1),
                                          on_pressure_drop=lambda: resumed.append(1))
        fetch(range(10))
        app.flow_control.suspend()  # a rebalance starts ...
        app.flow_control.resume()  # ... and ends: the buffer is cleared
        resumed_by_rebalance = list(resumed)
        fetch(range(10))  # the partition's next owner (this worker again) reads it from its commit
        return paused, resumed_by_rebalance

    paused, resumed = asyncio.run(scenario())
    assert resumed == [1]  # fetching it again does not wait for a take
    assert paused == [1, 1]  # and its share holds after the rebalance as before it
