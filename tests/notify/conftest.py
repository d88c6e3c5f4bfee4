"""Fixtures for the notifier's tests: a real HTTP receiver, alert events, a worker process."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/ is not a package: make notify_helpers importable

from notify_helpers import AlertPublisher, HttpReceiver, WorkerProcess, make_event


@pytest.fixture
def http_receiver():
    servers = []

    def make(port: int = 0, **kw) -> HttpReceiver:
        s = HttpReceiver(port_wanted=port, **kw).start()
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


@pytest.fixture
def alert_event():
    return make_event


@pytest.fixture
def notify_topics(topic_prefix):
    return {"alerts": f"{topic_prefix}.alerts", "history": f"{topic_prefix}.notifications"}


@pytest.fixture
def publisher(bootstrap, notify_topics):
    from pipelines.notify.kafka_io import ensure_notify_topics
    from pipelines.notify.settings import NotifySettings

    ensure_notify_topics(NotifySettings(kafka_bootstrap=bootstrap, notify_alerts_topic=notify_topics["alerts"],
                                        notify_history_topic=notify_topics["history"],
                                        notify_deadletter_topic=notify_topics["alerts"] + ".dead", _env_file=None))
    return AlertPublisher(bootstrap, notify_topics["alerts"])


@pytest.fixture
def notify_worker(notify_cmd, subprocess_env, bootstrap, notify_topics, tmp_path):
    workers: list[WorkerProcess] = []

    def make(*args: str, env: dict | None = None) -> WorkerProcess:
        e = {**subprocess_env, "GPUWATCH_NOTIFY_DEADLETTER_TOPIC": notify_topics["alerts"] + ".dead",
             **(env or {})}
        cmd = [*notify_cmd, "notify", "--bootstrap", bootstrap, "--alerts-topic", notify_topics["alerts"],
               "--history-topic", notify_topics["history"], "--listen", "127.0.0.1:0", *args]
        w = WorkerProcess(cmd, e, tmp_path / f"worker-{uuid.uuid4().hex[:6]}.log")
        workers.append(w)
        return w.start()

    yield make
    for w in workers:
        w.stop()


@pytest.fixture
def notify_cmd() -> list[str]:
    """The notifier's subcommands (``notify``, ``silence``, ``ack``, ``unack``) as a subprocess.

    The same argparse registrations as ``gpuwatch``; used so these tests do not
    depend on the other subcommands being importable.
    """
    import sys

    return [sys.executable, "-m", "pipelines.notify"]
