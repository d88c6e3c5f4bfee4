"""Shared fixtures: a real Kafka broker on free ports and real chDB paths.

The broker is started once per test session (the first test that asks for it
pays the start-up) and stopped at the end, whatever happened.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory):
    """A real Apache Kafka 3.9 broker (KRaft, loopback, free ports) for this test session."""
    from infra.kafka.broker import LocalKafka, free_port

    broker = LocalKafka(tmp_path_factory.mktemp("kafka"), port=free_port(), controller_port=free_port())
    broker.start(timeout=180)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def bootstrap(kafka_broker) -> str:
    return kafka_broker.bootstrap


@pytest.fixture
def topic_prefix() -> str:
    """A unique prefix so tests sharing the broker never see each other's messages."""
    return f"t{uuid.uuid4().hex[:8]}"


@pytest.fixture
def chdb_dsn(tmp_path) -> str:
    """A fresh chDB data path. Open it only in a subprocess, or once per test process:
    chDB allows one data path per process."""
    return f"chdb://{tmp_path / 'clickhouse'}"


@pytest.fixture(scope="session")
def chdb_session_dsn(tmp_path_factory) -> str:
    """The one chDB data path this test process may open (chDB allows one per process)."""
    return f"chdb://{tmp_path_factory.mktemp('chdb-session')}"


@pytest.fixture
def store(chdb_session_dsn):
    """A real embedded ClickHouse with the gpuwatch schema, in a database of this test's own."""
    from pipelines.store import Store

    s = Store(chdb_session_dsn, database=f"t_{uuid.uuid4().hex[:12]}")
    s.apply_schema()
    try:
        yield s
    finally:
        s.command(f"DROP DATABASE IF EXISTS {s.database}")


@pytest.fixture
def gpuwatch_cmd() -> list[str]:
    """How to run the ``gpuwatch`` CLI in a subprocess, with this interpreter."""
    return [sys.executable, "-m", "pipelines.cli"]


@pytest.fixture
def subprocess_env(tmp_path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    env["GPUWATCH_HOME"] = str(tmp_path / "home")
    return env
