"""Start and stop real gpuwatch processes (pipeline, notifier, simulated agents) for tests.

Each process runs as a subprocess, exactly as an operator would run it, with
its environment pointing at the test's broker, topics and chDB path.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import orjson

from infra.kafka.broker import free_port

ROOT = Path(__file__).resolve().parents[1]


def wait_for(predicate, timeout: float, interval: float = 0.25, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last value {last!r})")


@dataclass
class Proc:
    """A gpuwatch subprocess whose output is collected in a log file."""

    name: str
    popen: subprocess.Popen
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_line(self, text: str, timeout: float = 120.0) -> None:
        def seen():
            if self.popen.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.popen.returncode}:\n{self.output()[-4000:]}")
            return text in self.output()
        wait_for(seen, timeout, what=f"{self.name} to print {text!r}")

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(30)

    def stop(self, timeout: float = 40.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        return self.popen.returncode


@dataclass
class Stack:
    """One isolated gpuwatch deployment: its own topics, consumer groups and chDB path."""

    bootstrap: str
    home: Path
    prefix: str
    web_port: int = field(default_factory=free_port)
    procs: list[Proc] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "PYTHONPATH": str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
            "PYTHONUNBUFFERED": "1",
            "GPUWATCH_HOME": str(self.home),
            "GPUWATCH_KAFKA_BOOTSTRAP": self.bootstrap,
            "GPUWATCH_TOPIC_PREFIX": self.prefix,
            "GPUWATCH_APP_ID": f"{self.prefix}-pipeline",
            "GPUWATCH_WEB_PORT": str(self.web_port),
            "GPUWATCH_LOG_LEVEL": "warning",
        })
        env.update(extra)
        return env

    def topic(self, name: str) -> str:
        return f"{self.prefix}.{name}"

    def spawn(self, name: str, *args: str, **env: str) -> Proc:
        self.home.mkdir(parents=True, exist_ok=True)
        log_path = self.home / f"{name}-{len(self.procs)}.log"
        out = open(log_path, "wb")
        popen = subprocess.Popen([sys.executable, "-m", "pipelines.cli", *args], cwd=ROOT, env=self.env(**env),
                                 stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        proc = Proc(name, popen, log_path)
        self.procs.append(proc)
        return proc

    def start_pipeline(self, **env: str) -> Proc:
        p = self.spawn("pipeline", "pipeline", **env)
        p.wait_for_line("pipeline: ready")
        return p

    def simulate(self, nodes: int, gpus: int, ticks: int, *faults: str, extra: tuple[str, ...] = ()) -> dict:
        args = ["agent", "--simulate", str(nodes), "--gpus", str(gpus), "--ticks", str(ticks), *extra]
        for f in faults:
            args += ["--fault", f]
        r = subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=ROOT, env=self.env(),
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


class Receiver:
    """A real HTTP server on loopback that records every POST it gets (a webhook endpoint)."""

    def __init__(self, status_codes: list[int] | None = None) -> None:
        self.requests: list[dict] = []
        self._codes = list(status_codes or [])
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    code = receiver._codes.pop(0) if receiver._codes else 200
                    if code == 200:
                        receiver.requests.append({"path": self.path, "headers": dict(self.headers),
                                                  "body": orjson.loads(body) if body else None})
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def bodies(self) -> list[dict]:
        with self._lock:
            return [r["body"] for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
