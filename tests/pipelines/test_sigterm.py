"""SIGTERM stops the pipeline and the notifier even when the broker is gone.

A broker of the test's own (the session broker is shared) serves a running
pipeline and notifier, then stops. SIGTERM must end both: the issue's bound is
10 s; the test allows 30 s on a loaded machine, where today's code was still
alive after 45-100 s. Nothing is lost by the forced end: the rows it could
not store were never acked, so Kafka replays them on the next start.
"""

from __future__ import annotations

import signal
import subprocess

import pytest

from infra.kafka.broker import LocalKafka, free_port
from tests.stack import Stack, wait_for


@pytest.fixture
def own_broker(tmp_path):
    broker = LocalKafka(tmp_path / "kafka", port=free_port(), controller_port=free_port())
    broker.start(timeout=180)
    try:
        yield broker
    finally:
        broker.stop()


def exits_after_sigterm(child, within: float) -> int | None:
    child.popen.send_signal(signal.SIGTERM)
    try:
        return child.popen.wait(within)
    except subprocess.TimeoutExpired:
        return None


@pytest.mark.integration
def test_sigterm_stops_pipeline_and_notifier_with_the_broker_stopped(own_broker, tmp_path, topic_prefix):
    stack = Stack(bootstrap=own_broker.bootstrap, home=tmp_path / "home", prefix=topic_prefix)
    try:
        stack.start_pipeline()
        notifier = stack.spawn("notify", "notify", "--webhook", "http://127.0.0.1:9/hook")
        notifier.wait_for_line("notify: ready")
        n = stack.simulate(1, 2, 5)["samples_published"]
        wait_for(lambda: stack.scalar("SELECT count() FROM gpuwatch.metrics_raw") == n, 60, what=f"{n} rows")
        pipeline = stack.procs[0]
        own_broker.stop()
        assert exits_after_sigterm(pipeline, 30) is not None, pipeline.output()[-3000:]
        assert exits_after_sigterm(notifier, 30) is not None, notifier.output()[-3000:]
    finally:
        stack.stop_all()
