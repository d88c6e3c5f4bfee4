"""Pieces for running a whole gpuwatch deployment on one machine: the demo and the tests use them.

* :func:`spawn` runs a ``gpuwatch`` subcommand as a child process, the way an
  operator would, with its output in a log file;
* :class:`WebhookRecorder` is a real HTTP endpoint on loopback that keeps what
  it is sent, standing in for a person's webhook.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]


def wait_for(predicate, timeout: float, interval: float = 0.25, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what} (last value {last!r})")


@dataclass
class Child:
    """A gpuwatch child process whose output goes to ``log_path``."""

    name: str
    popen: subprocess.Popen
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_line(self, text: str, timeout: float = 120.0) -> None:
        def seen():
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.output()[-4000:]}")
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


def spawn(name: str, args: list[str], env: dict[str, str], log_dir: Path, detach: bool = False) -> Child:
    """Run ``gpuwatch ARGS`` with its output in ``log_dir/NAME.log``.

    ``detach`` puts the child in a session of its own, so it outlives the
    command that started it and a Ctrl-C or closed terminal does not reach it
    (``gpuwatch up``).
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    n = 1
    while log_path.exists():
        log_path, n = log_dir / f"{name}-{n}.log", n + 1
    full_env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                "PYTHONUNBUFFERED": "1", **env}
    with open(log_path, "wb") as out:
        popen = subprocess.Popen([sys.executable, "-m", "pipelines.cli", *args], cwd=ROOT, env=full_env,
                                 stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=detach)
    return Child(name, popen, log_path)


class WebhookRecorder:
    """A real HTTP server on 127.0.0.1 that records every JSON POST it accepts.

    ``status_codes`` are answered in order before settling on 200, to play a
    receiver that fails first.
    """

    def __init__(self, status_codes: list[int] | None = None) -> None:
        self.requests: list[dict] = []
        self._codes = list(status_codes or [])
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with recorder._lock:
                    code = recorder._codes.pop(0) if recorder._codes else 200
                    if code == 200:
                        recorder.requests.append({"path": self.path, "headers": dict(self.headers),
                                                  "body": orjson.loads(body) if body else None})
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self) -> list[dict]:
        with self._lock:
            return [r["body"] for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
