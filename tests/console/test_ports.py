"""A second user on the same host gets a sentence, not a traceback, when a default port is taken (issue 15)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from pipelines.devstack import ROOT


@pytest.fixture
def taken_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.mark.parametrize("args", [["pipeline", "--web-port", "{port}"],
                                  ["notify", "--webhook", "http://127.0.0.1:9/x", "--listen", "127.0.0.1:{port}"]])
def test_a_taken_port_is_named_with_what_to_do(taken_port, tmp_path, args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUWATCH_")}
    env.update(PYTHONPATH=str(ROOT), GPUWATCH_HOME=str(tmp_path), GPUWATCH_KAFKA_BOOTSTRAP="127.0.0.1:9")
    r = subprocess.run([sys.executable, "-m", "pipelines.cli", *(a.format(port=taken_port) for a in args)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert f"127.0.0.1:{taken_port} is already in use" in r.stderr and "gpuwatch up" in r.stderr


def test_the_notifier_says_when_kafka_is_not_there(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUWATCH_")}
    env.update(PYTHONPATH=str(ROOT), GPUWATCH_HOME=str(tmp_path), GPUWATCH_KAFKA_BOOTSTRAP="127.0.0.1:9")
    r = subprocess.run([sys.executable, "-m", "pipelines.cli", "notify", "--webhook", "http://127.0.0.1:9/x",
                        "--listen", "127.0.0.1:0"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "cannot reach Kafka at 127.0.0.1:9" in r.stderr
