"""How long the broker may hold a fetch: Faust fixes aiokafka's ``fetch_max_wait_ms`` at 1.5 s.

aiokafka keeps at most one fetch in flight per broker, for every partition
that broker leads. When the only fetchable partitions are quiet ones (the
backlogged partitions still have records waiting, or are paused by
:mod:`pipelines.processors.fair_buffer`), the broker holds that fetch until
data arrives or ``fetch_max_wait_ms`` passes; partitions that become fetchable
meanwhile wait for it (issue 11). Faust passes a constant, so this sets the
value on the consumer Faust creates, before it starts its fetcher.
"""

from __future__ import annotations

from typing import Any


def set_fetch_max_wait(consumer: Any, fetch_max_wait_ms: int) -> None:
    """Make the aiokafka consumer that Faust's ``consumer`` creates hold fetches at most ``fetch_max_wait_ms``."""
    thread = consumer._thread
    create_worker_consumer = thread._create_worker_consumer

    def create_with_fetch_max_wait(transport: Any) -> Any:
        aiokafka_consumer = create_worker_consumer(transport)
        aiokafka_consumer._fetch_max_wait_ms = fetch_max_wait_ms  # read by start() when it builds the Fetcher
        return aiokafka_consumer

    thread._create_worker_consumer = create_with_fetch_max_wait
