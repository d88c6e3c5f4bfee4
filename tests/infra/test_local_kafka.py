"""``gpuwatch kafka start|stop|status``: idempotent, start returns only when the broker answers, and a data
directory belongs to one broker at a time."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from confluent_kafka.admin import AdminClient

from infra.kafka.broker import BrokerError, LocalKafka, free_port
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
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        r = kafka("start", s.getsockname()[1], free_port(), str(tmp_path / "k"))
    assert r.returncode == 1 and "already taken" in r.stderr


def _serving(bootstrap: str) -> bool:
    host, port = bootstrap.rsplit(":", 1)
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex((host, int(port))) == 0


def test_a_second_broker_on_a_running_brokers_data_dir_is_refused_and_the_first_keeps_serving(kafka_broker):
    """``gpuwatch kafka start`` beside ``gpuwatch up`` once started a second broker on up's data directory:
    it overwrote the pid file and config, and the running broker died of a corrupt log."""
    pid = kafka_broker.pid()
    second = LocalKafka(kafka_broker.data_dir, port=free_port(), controller_port=free_port())
    with pytest.raises(BrokerError, match=rf"already runs on .* \(pid {pid}, {kafka_broker.bootstrap}\)"):
        second.start(timeout=60)
    assert kafka_broker.pid() == pid and kafka_broker.running() and _serving(kafka_broker.bootstrap)
    # asked about the data directory with another port, status names the broker that runs there
    st = second.status()
    assert st["running"] and st["pid"] == pid and st["bootstrap"] == kafka_broker.bootstrap


def test_a_stale_pid_file_naming_another_process_is_not_a_broker(tmp_path):
    """After a crash or a reboot the pid in broker.pid can belong to anything: it is not this data directory's
    broker, so start goes ahead and stop kills nothing."""
    b = LocalKafka(tmp_path / "kafka", port=free_port(), controller_port=free_port())
    b.data_dir.mkdir(parents=True)
    (b.data_dir / "broker.pid").write_text(f"{os.getpid()}\n")  # this test process: alive, not Kafka
    assert b.pid() is None and not b.running() and b.status()["pid"] is None
    assert b.stop() is False  # and this process is still here to say so
