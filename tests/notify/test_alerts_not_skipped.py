"""The notifier never skips an alert it read but did not store (real broker, no worker process).

It reads every partition of the alerts topic by manual assignment and commits
only after storing a batch. A partition with nothing committed yet starts at
the earliest offset (aiokafka resets a freshly assigned partition by
``auto_offset_reset``; the notifier never calls ``seek_to_committed``, whose
None/0 gap the pipeline works around). What could skip alerts is the other
half: a batch that fails to be stored while the consumer's position has moved
past it, with the worker going on from that position.
"""

from __future__ import annotations

import asyncio
import uuid

from notify_helpers import make_event


def _settings(bootstrap: str, topics: dict, group: str):
    from pipelines.notify.settings import NotifySettings

    return NotifySettings(kafka_bootstrap=bootstrap, notify_alerts_topic=topics["alerts"],
                          notify_history_topic=topics["history"], notify_deadletter_topic=topics["alerts"] + ".dead",
                          notify_group_id=group, _env_file=None)


def _consume(settings, ingest, until) -> None:
    """Run an AlertConsumer as app.py does (retry the loop after an error) until ``until()``."""
    from pipelines.notify.kafka_io import AlertConsumer
    from pipelines.notify.metrics import NotifyMetrics

    async def go() -> None:
        consumer = AlertConsumer(settings, ingest, NotifyMetrics())
        stop = asyncio.Event()
        await consumer.start()
        try:
            for _ in range(100):
                try:
                    await asyncio.wait_for(consumer.run(stop), timeout=0.3)
                except asyncio.TimeoutError:
                    pass
                except Exception:  # app.py logs it and runs the consumer again
                    pass
                if until():
                    return
        finally:
            await consumer.stop()
    asyncio.run(go())


def test_a_batch_that_fails_to_be_stored_is_read_again_not_skipped(bootstrap, notify_topics, publisher):
    published = [make_event(node=f"n{i}") for i in range(5)]
    publisher.send(*published)  # before the notifier's first commit
    stored: list[str] = []
    failures = [RuntimeError("state database is locked")]

    def ingest(alerts) -> int:
        if failures:
            raise failures.pop()
        stored.extend(a.fingerprint for a in alerts)
        return len(alerts)

    settings = _settings(bootstrap, notify_topics, f"t-{uuid.uuid4().hex}")
    _consume(settings, ingest, lambda: len(stored) >= len(published))
    assert sorted(stored) == sorted(e.fingerprint for e in published)

    # and after a restart nothing is read twice (the commit covers the stored batch)
    again: list[str] = []
    publisher.send(late := make_event(node="late"))
    _consume(settings, lambda alerts: again.extend(a.fingerprint for a in alerts) or len(alerts),
             lambda: bool(again))
    assert again == [late.fingerprint]
