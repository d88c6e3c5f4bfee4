"""Test helpers for the notifier: a real HTTP receiver, alert events, Kafka I/O, a worker process."""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from infra.kafka.broker import free_port  # noqa: F401 - re-exported for the notifier's tests
from schemas.alerts import AlertEvent, alert_fingerprint


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)

    def json(self):
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """A local HTTP server that records what it is sent.

    ``script`` is a list of status codes to answer in turn (then 200); ``secret``
    makes it check the HMAC signature and answer 401 to a bad one.
    """

    secret: bytes | None = None
    script: list[int] = field(default_factory=list)
    ok_status: int = 200
    received: list[Received] = field(default_factory=list)
    rejected: list[Received] = field(default_factory=list)
    bad_signatures: int = 0
    port_wanted: int = 0

    def start(self) -> "HttpReceiver":
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                rec = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                status = outer.script.pop(0) if outer.script else outer.ok_status
                if outer.secret is not None and not outer.signature_ok(rec):
                    outer.bad_signatures += 1
                    status = 401
                (outer.received if status < 300 else outer.rejected).append(rec)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"status":"success"}' if status < 300 else b'{"error":"nope"}')

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port_wanted), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        return self

    def signature_ok(self, rec: Received) -> bool:
        ts = rec.headers.get("x-gpuwatch-timestamp", "")
        want = "sha256=" + hmac.new(self.secret, ts.encode() + b"." + rec.body, hashlib.sha256).hexdigest()
        return bool(ts) and hmac.compare_digest(want, rec.headers.get("x-gpuwatch-signature", ""))

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, n: int, timeout: float = 20.0) -> list[Received]:
        deadline = time.time() + timeout
        while time.time() < deadline and len(self.received) < n:
            time.sleep(0.02)
        return list(self.received)


def make_event(status: str = "firing", alertname: str = "GpuHot", starts_at: float | None = None,
               event_ts: float | None = None, severity: str = "warning", **labels: str) -> AlertEvent:
    labels = {"node": "n1", "gpu": "0", **labels}
    now = time.time()
    starts_at = starts_at if starts_at is not None else now
    fp = alert_fingerprint({"alertname": alertname, **labels})
    return AlertEvent(fingerprint=fp, status=status, alertname=alertname, severity=severity, labels=labels,
                      annotations={"summary": f"{alertname} on {labels['node']}"}, starts_at=starts_at,
                      ends_at=now if status == "resolved" else None,
                      event_ts=event_ts if event_ts is not None else now)


def run_cli(notify_cmd, env, *args) -> subprocess.CompletedProcess:
    """Run a notifier CLI command (``silence``, ``ack``...) the way a user would."""
    return subprocess.run([*notify_cmd, *args], env=env, capture_output=True, text=True, timeout=30)


def eventually(cond, timeout: float = 15.0) -> bool:
    """Whether ``cond()`` becomes true within ``timeout`` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def send_once(notifier, notification) -> None:
    """Deliver one notification through a receiver plugin, then close it."""
    import asyncio

    async def go():
        try:
            await notifier.notify(notification)
        finally:
            await notifier.close()
    asyncio.run(go())


def read_history(bootstrap: str, topic: str, want: int = 1, timeout: float = 15.0) -> list[dict]:
    """Every HistoryRecord on the topic so far (waiting until at least ``want``), as dicts."""
    from confluent_kafka import Consumer

    from schemas.codec import decode
    from schemas.history import HistoryRecord

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"t-{uuid.uuid4().hex}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    out, deadline = [], time.time() + timeout
    try:
        while time.time() < deadline:
            m = c.poll(0.5)
            if m is None:
                if len(out) >= want:
                    break
                continue
            if m.error():
                continue
            r = decode(m.value(), HistoryRecord)
            out.append({"table": r.table, **r.row})
    finally:
        c.close()
    return out


class AlertPublisher:
    def __init__(self, bootstrap: str, topic: str) -> None:
        from confluent_kafka import Producer

        self.topic = topic
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})

    def send(self, *events: AlertEvent | bytes) -> None:
        from schemas.codec import encode

        for ev in events:
            if isinstance(ev, bytes):
                self.producer.produce(self.topic, value=ev, key=b"bad")
            else:
                self.producer.produce(self.topic, value=encode(ev), key=ev.fingerprint.encode())
        assert self.producer.flush(10) == 0


class WorkerProcess:
    """``gpuwatch notify`` as a subprocess, stopped with SIGTERM."""

    def __init__(self, cmd: list[str], env: dict[str, str], log_path: Path) -> None:
        self.cmd, self.env, self.log_path = cmd, env, log_path
        self.proc: subprocess.Popen | None = None
        self.api_url = ""

    def start(self, timeout: float = 60.0) -> "WorkerProcess":
        self.out = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=subprocess.PIPE, stderr=self.out)
        deadline = time.time() + timeout
        lines = []
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            lines.append(line.decode())
            if line.startswith(b"notify: ready"):
                self.api_url = line.decode().split(" api ")[1].split(",")[0]
                threading.Thread(target=self._drain, daemon=True).start()
                return self
        self.stop()
        raise AssertionError(f"worker did not get ready: {''.join(lines)}\n{self.log_path.read_text()[-3000:]}")

    def _drain(self) -> None:
        for line in self.proc.stdout:
            self.out.write(line)

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("worker did not stop within 20 s of SIGTERM")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")




class ServiceHarness:
    """A NotifyService in this process (no Kafka): state in ``directory``, history in memory."""

    def __init__(self, config: dict, directory: Path, retry=None) -> None:
        from pipelines.notify.config import parse_config
        from pipelines.notify.history import MemoryHistory
        from pipelines.notify.service import NotifyService
        from pipelines.notify.state_db import StateDB

        self.history = MemoryHistory()
        self.db = StateDB(directory)
        self.service = NotifyService(parse_config(config), self.db, self.history, retry_policy=retry)

    def ingest(self, *events: AlertEvent) -> int:
        from pipelines.notify.alert import Alert

        return self.service.ingest([Alert.from_event(e, received_at=time.time()) for e in events])

    async def close(self) -> None:
        await self.service.close()
        self.db.close()


def webhook_config(url: str, **route) -> dict:
    return {"route": {"receiver": "hook", "group_by": ["alertname"], "group_wait": "0.3s",
                      "group_interval": "0.5s", "repeat_interval": "1h", **route},
            "receivers": [{"name": "hook", "webhook_configs": [{"url": url}]}]}


def make_notification(*events: AlertEvent, receiver: str = "team", group_labels: dict | None = None,
                      group_key: str = '{}:{alertname="GpuHot"}', external_url: str = ""):
    from pipelines.notify.alert import Alert
    from pipelines.notify.notification import Notification

    return Notification(receiver=receiver, group_key=group_key,
                        group_labels=group_labels if group_labels is not None else {"alertname": "GpuHot"},
                        alerts=[Alert.from_event(e) for e in events], external_url=external_url)
