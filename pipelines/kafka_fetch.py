"""How the pipeline's Kafka consumer fetches, where Faust gives no setting (issue 11).

aiokafka keeps at most one fetch in flight per broker, for every partition
that broker leads, and holds back the next one while fetched records of any
partition wait to be taken, for up to ``prefetch_backoff`` (0.1 s). Partitions
that a backlog fills, or that :mod:`pipelines.processors.fair_buffer` pauses,
keep records waiting, so a quiet partition's sample waits for that backoff
before it is even asked for. When the only fetchable partitions are quiet, the
broker holds the fetch until data arrives or ``fetch_max_wait_ms`` passes
(Faust fixes it at 1.5 s). This sets both on the consumer Faust creates.
"""

from __future__ import annotations

from typing import Any


def set_fetch_timing(consumer: Any, fetch_max_wait_ms: int, prefetch_backoff_ms: int) -> None:
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

        aiokafka_consumer.start = start_with_prefetch_backoff
        return aiokafka_consumer

    thread._create_worker_consumer = create_with_fetch_timing
