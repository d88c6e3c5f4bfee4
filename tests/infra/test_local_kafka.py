"""The local broker's data directory belongs to one broker at a time."""

from __future__ import annotations

import socket

import pytest

from infra.kafka.broker import BrokerError, LocalKafka, free_port


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
