"""``gpuwatch kafka start|stop|status``: idempotent, and start returns only when the broker answers."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from confluent_kafka.admin import AdminClient

from infra.kafka.broker import free_port
from schemas.topics import NODE_PARTITIONS
from tests.stack import ROOT

pytestmark = pytest.mark.integration


def kafka(action: str, port: int, ctrl: int, data: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", "kafka", action, "--port", str(port),
                           "--controller-port", str(ctrl), "--data-dir", data], cwd=ROOT, capture_output=True,
                          text=True, timeout=240, env={**os.environ, "PYTHONPATH": str(ROOT), **env})


#: The topics `gpuwatch kafka start` creates follow GPUWATCH_TOPIC_PARTITIONS, as the pipeline's do.
PARTITIONS = '{"metrics": 8, "logs": 8, "events": 8, "heartbeats": 8, "alerts": 2}'


def test_start_is_idempotent_creates_the_topics_and_stop_stops(tmp_path):
    port, ctrl, data = free_port(), free_port(), str(tmp_path / "kafka")
    try:
        first = kafka("start", port, ctrl, data, GPUWATCH_TOPIC_PARTITIONS=PARTITIONS)
        assert first.returncode == 0, first.stderr
        assert f"running on 127.0.0.1:{port}" in first.stdout
        topics = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"}).list_topics(timeout=30).topics
        assert {"gpuwatch.metrics.v1", "gpuwatch.alerts.v1", "gpuwatch.deadletter.v1"} <= set(topics)
        assert len(topics["gpuwatch.metrics.v1"].partitions) == 8 != NODE_PARTITIONS
        assert len(topics["gpuwatch.alerts.v1"].partitions) == 2
        again = kafka("start", port, ctrl, data)
        assert again.returncode == 0 and "already running" in again.stdout
        assert kafka("status", port, ctrl, data).returncode == 0
    finally:
        stopped = kafka("stop", port, ctrl, data)
    assert stopped.returncode == 0 and "kafka stopped" in stopped.stdout
    assert "was not running" in kafka("stop", port, ctrl, data).stdout
    assert kafka("status", port, ctrl, data).returncode == 3


def test_a_taken_port_is_a_clear_error(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        r = kafka("start", s.getsockname()[1], free_port(), str(tmp_path / "k"))
    assert r.returncode == 1 and "already taken" in r.stderr
