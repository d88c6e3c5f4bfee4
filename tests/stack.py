"""Start and stop real gpuwatch processes (pipeline, notifier, simulated agents) for tests.

Each process runs as a subprocess, exactly as an operator would run it, with
its environment pointing at the test's broker, topics and chDB path.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson

from infra.kafka.broker import free_port
from pipelines.devstack import ROOT, Child, WebhookRecorder, spawn
from pipelines.devstack import wait_for as _wait_for

Receiver = WebhookRecorder


def wait_for(predicate, timeout: float, interval: float = 0.25, what: str = "condition"):
    try:
        return _wait_for(predicate, timeout, interval, what)
    except TimeoutError as e:
        raise AssertionError(str(e)) from None


@dataclass
class Stack:
    """One isolated gpuwatch deployment: its own topics, consumer groups and chDB path."""

    bootstrap: str
    home: Path
    prefix: str
    web_port: int = field(default_factory=free_port)
    notify_port: int = field(default_factory=free_port)
    procs: list[Child] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "GPUWATCH_HOME": str(self.home),
            "GPUWATCH_KAFKA_BOOTSTRAP": self.bootstrap,
            "GPUWATCH_TOPIC_PREFIX": self.prefix,
            "GPUWATCH_APP_ID": f"{self.prefix}-pipeline",
            "GPUWATCH_WEB_PORT": str(self.web_port),
            "GPUWATCH_NOTIFY_LISTEN": f"127.0.0.1:{self.notify_port}",
            "GPUWATCH_LOG_LEVEL": "warning",
            **extra,
        }

    def topic(self, name: str) -> str:
        return f"{self.prefix}.{name}"

    def spawn(self, name: str, *args: str, **env: str) -> Child:
        child = spawn(name, list(args), self.env(**env), self.home)
        self.procs.append(child)
        return child

    def start_pipeline(self, **env: str) -> Child:
        p = self.spawn("pipeline", "pipeline", **env)
        try:
            p.wait_for_line("pipeline: ready")
        except RuntimeError as e:
            raise AssertionError(str(e)) from None
        return p

    def simulate(self, nodes: int, gpus: int, ticks: int, *faults: str, extra: tuple[str, ...] = ()) -> dict:
        args = ["agent", "--simulate", str(nodes), "--gpus", str(gpus), "--ticks", str(ticks), *extra]
        for f in faults:
            args += ["--fault", f]
        import os

        r = subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=ROOT,
                           env={**os.environ, "PYTHONPATH": str(ROOT), **self.env()},
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        return orjson.loads(r.stdout.strip().splitlines()[-1])

    def query(self, sql: str) -> list[dict]:
        """Read-only SQL through the running pipeline's /query endpoint."""
        r = httpx.post(f"http://127.0.0.1:{self.web_port}/query", json={"sql": sql}, timeout=60)
        assert r.status_code == 200, r.text
        body = r.json()
        return [dict(zip(body["columns"], row)) for row in body["rows"]]

    def scalar(self, sql: str):
        rows = self.query(sql)
        return next(iter(rows[0].values()))

    def stop_all(self) -> None:
        for p in reversed(self.procs):
            p.stop()
