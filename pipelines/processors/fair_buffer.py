"""A stream buffer that serves partitions that keep up first, so a quiet partition never waits behind a backlog.

Faust hands a topic's messages to its processor through one FIFO buffer for
all partitions. While the worker drains a backlog on some partitions, that
FIFO is full of their batches, and a breach on a quiet partition waits for
all of them (issue 11: a 4,096-batch buffer was 70 s at 10k samples/s). A
short FIFO does not help either: once it is full, Faust's fetch loop blocks
on it and node events queue behind the metrics too.

:class:`PartitionFairTopic` gives the processor a buffer that keeps one queue
per partition and pauses fetching a partition once *it* has ``per_partition``
batches waiting (resumed when it is down to half). It serves partitions that
are *current* (fewer than ``per_partition // 4`` waiting: they keep up) before
partitions that are behind, each group in turn. Order within a partition is
kept, which is all Kafka promises; the ack ledger and per-node state are per
partition anyway. So a backlogged partition holds only a few batches in
memory, the fetch loop rarely waits, and a batch from a partition that keeps
up waits only for the batch being handled. Backlogged partitions cannot
starve: a partition that keeps getting served first only stays current while
the worker keeps up with it.

>>> from types import SimpleNamespace as NS
>>> q = PartitionTurns(behind=2)
>>> for p, n in [(1, "a"), (1, "b"), (1, "c"), (2, "d"), (0, "x")]:
...     q.append(NS(message=NS(partition=p), n=n))
>>> [q.popleft().n for _ in range(len(q))]  # partition 1 is behind: 2 and 0 first, then in turn
['d', 'x', 'a', 'b', 'c']
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable

import faust
from mode.utils.queues import ThrowableQueue


def _partition(item: Any) -> int:
    message = getattr(item, "message", None)
    return getattr(message, "partition", -1)


class PartitionTurns:
    """The deque an :class:`asyncio.Queue` keeps, but one per partition: current partitions first, in turn."""

    def __init__(self, behind: int = 2) -> None:
        #: a partition with this many batches waiting is behind (a backlog), served after current ones
        self.behind = behind
        self._by_partition: dict[int, deque] = {}
        #: partitions with something waiting, in serving order
        self._turns: deque[int] = deque()
        self._len = 0

    def append(self, item: Any) -> None:
        p = _partition(item)
        q = self._by_partition.get(p)
        if q is None:
            q = self._by_partition[p] = deque()
        if not q:
            self._turns.append(p)
        q.append(item)
        self._len += 1

    def popleft(self) -> Any:
        if not self._len:
            raise IndexError("pop from an empty PartitionTurns")
        turns, by_partition = self._turns, self._by_partition
        for i, p in enumerate(turns):
            if len(by_partition[p]) < self.behind:
                del turns[i]
                break
        else:
            p = turns.popleft()
        q = by_partition[p]
        item = q.popleft()
        self._len -= 1
        if q:
            turns.append(p)
        return item

    def waiting(self, partition: int) -> int:
        q = self._by_partition.get(partition)
        return len(q) if q else 0

    def clear(self) -> None:
        self._by_partition.clear()
        self._turns.clear()
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def __bool__(self) -> bool:
        return self._len > 0

    def __iter__(self):
        for p in self._turns:
            yield from self._by_partition[p]


class PartitionFairQueue(ThrowableQueue):
    """Faust's stream buffer with per-partition flow control, current partitions served first."""

    def __init__(self, *args: Any, per_partition: int, **kwargs: Any) -> None:
        self.per_partition = per_partition
        #: partition -> the callback that resumes fetching it (Faust's ``on_pressure_drop``)
        self._paused: dict[int, Callable[[], None]] = {}
        super().__init__(*args, **kwargs)

    def _init(self, maxsize: int) -> None:  # asyncio.Queue's hook for its container
        self._queue = PartitionTurns(behind=max(2, self.per_partition // 4))

    def put_nowait_enhanced(self, value: Any, *, on_pressure_high: Callable, on_pressure_drop: Callable) -> bool:
        """Called by Faust's conductor for each message; pauses the message's partition once it has
        ``per_partition`` batches waiting (the batches already fetched are still taken)."""
        p = _partition(value)
        high = p not in self._paused and self._queue.waiting(p) >= self.per_partition
        if high:
            self._paused[p] = on_pressure_drop
            on_pressure_high()
        self.force_put_nowait(value)
        return high

    def clear(self) -> None:
        """Faust clears the buffer when a rebalance ends (its batches are the old generation's): resume
        the partitions paused meanwhile, whose batches were dropped rather than taken. Left paused here,
        a partition would not be paused again until a take found it drained, so it would fill unbounded."""
        super().clear()
        paused, self._paused = self._paused, {}
        for resume in paused.values():
            resume()

    def maybe_endorse_pressure_drop(self) -> None:
        """Before each take: resume fetching the partitions that are down to half their share."""
        if self._paused:
            low = max(1, self.per_partition // 2)
            for p in [p for p in self._paused if self._queue.waiting(p) <= low]:
                self._paused.pop(p)()


class PartitionFairTopic(faust.Topic):
    """A topic whose processor's buffer is a :class:`PartitionFairQueue` (clones keep the class)."""

    def __init__(self, *args: Any, per_partition: int = 8, **kwargs: Any) -> None:
        self.per_partition = per_partition
        super().__init__(*args, **kwargs)

    def _clone_args(self) -> dict:
        return {**super()._clone_args(), "per_partition": self.per_partition}

    @property
    def queue(self) -> ThrowableQueue:
        if self._queue is None:
            self._queue = PartitionFairQueue(
                maxsize=self.maxsize or self.app.conf.stream_buffer_maxsize, per_partition=self.per_partition,
                flow_control=self.app.flow_control, clear_on_resume=True)
        return self._queue
