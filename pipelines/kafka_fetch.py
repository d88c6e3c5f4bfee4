"""How the pipeline's Kafka consumer fetches, where Faust gives no setting (issue 11).

aiokafka keeps at most one fetch in flight per broker, for every partition
that broker leads, and holds back the next one while fetched records of any
partition wait to be taken, for up to ``prefetch_backoff`` (0.1 s). Partitions
that a backlog fills, or that :mod:`pipelines.processors.fair_buffer` pauses,
keep records waiting, so a quiet partition's sample waits for that backoff
before it is even asked for. When the only fetchable partitions are quiet, the
broker holds the fetch until data arrives or ``fetch_max_wait_ms`` passes
(Faust fixes it at 1.5 s). This sets both on the consumer Faust creates.

The per-partition fetch size is small (64 KiB) and a poll hands over at most
50 records so that backlogged partitions hand over small chunks and a quiet
partition's sample gets through soon. While the worker catches up on a backlog
there is no such sample to wait for: every partition is behind, and each fetch
round costs the consumer's thread and the event loop the same Python work
(every assigned partition encoded and decoded), and each poll a round trip
between Faust's two threads, whatever they bring. :class:`FetchMode` switches
to ``backlog_bytes`` (1 MiB: 57 against 64-66 CPU-s for one worker's backlog,
issue 10) and ``backlog_poll_records`` then, and back once the worker is live.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("gpuwatch.kafka_fetch")


class FetchMode:
    """How much the consumer fetches per partition and hands over per poll: small while the worker is live
    (latency, issue 11), large while it catches up on a backlog (throughput, issue 10)."""

    def __init__(self, live_bytes: int, backlog_bytes: int, live_poll_records: int = 50,
                 backlog_poll_records: int = 50) -> None:
        self.live_bytes, self.backlog_bytes = live_bytes, max(live_bytes, backlog_bytes)
        self.live_poll_records = live_poll_records
        self.backlog_poll_records = max(live_poll_records, backlog_poll_records)
        self.catching_up = False
        self._consumer: Any = None

    def attach(self, consumer: Any) -> None:
        """The aiokafka consumer, once started: its Fetcher reads the size at every fetch request, and Faust
        reads ``_max_poll_records`` at every poll."""
        self._consumer = consumer
        self._apply()

    def set_catching_up(self, catching_up: bool) -> None:
        if catching_up != self.catching_up:
            self.catching_up = catching_up
            log.info("%s: fetching %d bytes per partition, %d records per poll",
                     "catching up on a backlog" if catching_up else "live", self.bytes, self.poll_records)
            self._apply()

    @property
    def bytes(self) -> int:
        return self.backlog_bytes if self.catching_up else self.live_bytes

    @property
    def poll_records(self) -> int:
        return self.backlog_poll_records if self.catching_up else self.live_poll_records

    def _apply(self) -> None:
        if self._consumer is not None:  # ints, read by the consumer's thread: no lock needed
            self._consumer._fetcher._max_partition_fetch_bytes = self.bytes
            self._consumer._max_poll_records = self.poll_records


def set_fetch_timing(consumer: Any, fetch_max_wait_ms: int, prefetch_backoff_ms: int,
                     mode: FetchMode | None = None) -> None:
    """Make the aiokafka consumer that Faust's ``consumer`` creates hold fetches at most
    ``fetch_max_wait_ms`` and wait at most ``prefetch_backoff_ms`` for fetched records to be taken."""
    thread = consumer._thread
    create_worker_consumer = thread._create_worker_consumer

    def create_with_fetch_timing(transport: Any) -> Any:
        aiokafka_consumer = create_worker_consumer(transport)
        aiokafka_consumer._fetch_max_wait_ms = fetch_max_wait_ms  # read by start() when it builds the Fetcher
        start = aiokafka_consumer.start

        async def start_with_prefetch_backoff() -> None:
            await start()
            aiokafka_consumer._fetcher._prefetch_backoff = prefetch_backoff_ms / 1000
            if mode is not None:
                mode.attach(aiokafka_consumer)

        aiokafka_consumer.start = start_with_prefetch_backoff
        return aiokafka_consumer

    thread._create_worker_consumer = create_with_fetch_timing
