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


@pytest.mark.integration
def test_sigterm_with_the_store_failing_stops_in_time_acks_nothing_and_a_restart_stores_every_sample(
        stack, bootstrap, tmp_path):
    """Issue 9 finding 7 with a failing store: the worker stops within its bound, commits no offset of a
    row it could not store, and a restart with the store back stores every sample exactly once."""
    import os

    from pipelines.devstack import ROOT
    from schemas.topics import METRICS
    from tests.pipelines.test_store_outage import FAULTS, _committed

    down = tmp_path / "store-is-down"
    fault_env = {"PYTHONPATH": f"{FAULTS}{os.pathsep}{ROOT}", "GPUWATCH_TEST_FAIL_INSERTS_WHILE": str(down),
                 "GPUWATCH_SHUTDOWN_TIMEOUT_S": "8"}
    pipeline = stack.start_pipeline(**fault_env)
    down.touch()
    n = stack.simulate(2, 2, 20)["samples_published"]
    # the worker has read them and is failing to store them
    wait_for(lambda: "insert into metrics_raw failed" in pipeline.output(), 90, what="a failed insert")
    assert exits_after_sigterm(pipeline, 30) is not None, pipeline.output()[-3000:]
    group, metrics_topic = f"{stack.prefix}-pipeline", stack.topic(METRICS.name)
    assert all(offset < 0 for offset in _committed(bootstrap, group, metrics_topic)), \
        "an offset was committed although none of its rows could be stored"

    down.unlink()  # the store is back; the same worker starts again
    stack.start_pipeline(**fault_env)
    wait_for(lambda: stack.scalar("SELECT count() FROM gpuwatch.metrics_raw") >= n, 90, what=f"{n} rows")
    row = stack.query("SELECT count() AS rows, uniqExact(node, gpu, metric, ts) AS points FROM gpuwatch.metrics_raw")[0]
    assert row == {"rows": n, "points": n}


@pytest.mark.integration
def test_healthz_says_kafka_is_unreachable_while_the_broker_is_gone_and_ok_once_it_is_back(own_broker, tmp_path,
                                                                                          topic_prefix):
    """/healthz said ok with the broker dead for over a minute (consumer lag 0: nothing new could be seen).
    A worker that can neither read nor send is not healthy, and says why; when the broker returns, it is."""
    import httpx

    stack = Stack(bootstrap=own_broker.bootstrap, home=tmp_path / "home", prefix=topic_prefix)
    health = f"http://127.0.0.1:{stack.web_port}/healthz"
    try:
        stack.start_pipeline(GPUWATCH_KAFKA_UNREACHABLE_AFTER_S="5")
        wait_for(lambda: httpx.get(health, timeout=10).status_code == 200, 60, what="/healthz 200")
        own_broker.stop()
        r = wait_for(lambda: (r := httpx.get(health, timeout=10)).status_code == 503 and r, 90,
                     what="/healthz 503 with the broker stopped")
        assert any("Kafka unreachable" in reason for reason in r.json()["reasons"]), r.json()
        own_broker.start(timeout=180)
        wait_for(lambda: httpx.get(health, timeout=10).status_code == 200, 120, what="/healthz 200 again")
    finally:
        stack.stop_all()
