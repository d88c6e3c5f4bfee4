"""The gpuwatch job SDK: one import for training and inference code to report how the job is doing.

It sends small UDP datagrams to the node agent on 127.0.0.1, which tags them
with the job and publishes them with the node's GPU metrics. It uses only the
standard library, never blocks the training loop (a non-blocking socket; a
full buffer drops the report and counts it) and never raises into user code.

Training::

    from agents import jobsdk
    for step, batch in enumerate(loader):
        loss = train_step(batch)
        jobsdk.report(step=step, loss=loss.item(), grad_norm=gn, learning_rate=lr, tokens_per_s=tps)

Inference::

    with jobsdk.timed_request():      # latency and errors, aggregated per flush
        answer = model.generate(prompt)

The job name comes from ``job=`` or the environment (``GPUWATCH_JOB``,
``SLURM_JOB_ID``, ``JOB_NAME``), the agent address from
``GPUWATCH_JOBSDK_ADDR`` (default ``127.0.0.1:9125``). Reports are sent at
most every ``flush_s`` seconds (latest gauge values, summed counters), and
once more at interpreter exit.

>>> r = JobReporter(job="demo", address="127.0.0.1:9")  # nothing listens: still fine
>>> r.report(step=1, loss=float("nan")); r.request(0.25, error=True); r.flush()
>>> r.errors_internal
0
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import socket
import threading
import time

DEFAULT_ADDR = "127.0.0.1:9125"
_MAX_DATAGRAM = 60_000


def _job_from_env() -> str:
    for k in ("GPUWATCH_JOB", "SLURM_JOB_ID", "JOB_NAME", "TORCHELASTIC_RUN_ID"):
        if os.environ.get(k):
            return os.environ[k]
    return f"{socket.gethostname()}-{os.getpid()}"


def _num(v) -> float | str | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else ("nan" if f != f else ("inf" if f > 0 else "-inf"))


class JobReporter:
    def __init__(self, job: str | None = None, address: str | None = None, flush_s: float = 0.5) -> None:
        self.job = (job or _job_from_env())[:256]
        host, _, port = (address or os.environ.get("GPUWATCH_JOBSDK_ADDR") or DEFAULT_ADDR).rpartition(":")
        self._addr = (host or "127.0.0.1", int(port))
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self.flush_s = flush_s
        self._lock = threading.Lock()
        self._gauges: dict[str, float | str] = {}
        self._lat_sum = 0.0
        self._lat_max = 0.0
        self._requests = 0
        self._errors = 0
        self._last_flush = time.monotonic()
        self.sent = 0
        self.dropped = 0
        self.errors_internal = 0
        atexit.register(self.flush)

    def report(self, *, step=None, loss=None, grad_norm=None, learning_rate=None, tokens_per_s=None,
               **extra) -> None:
        """Record the latest training values (any subset); extra keyword values become job_<name>."""
        try:
            values = {"step": step, "loss": loss, "grad_norm": grad_norm, "learning_rate": learning_rate,
                      "tokens_per_s": tokens_per_s, **extra}
            with self._lock:
                for k, v in values.items():
                    if v is not None and (n := _num(v)) is not None:
                        self._gauges[str(k)[:60]] = n
            self._maybe_flush()
        except Exception:  # noqa: BLE001 - never raise into user code
            self.errors_internal += 1

    def request(self, latency_s: float, error: bool = False) -> None:
        """Record one served request (inference)."""
        try:
            lat = float(latency_s)
            with self._lock:
                if math.isfinite(lat) and lat >= 0:
                    self._lat_sum += lat
                    self._lat_max = max(self._lat_max, lat)
                    self._requests += 1
                if error:
                    self._errors += 1
            self._maybe_flush()
        except Exception:  # noqa: BLE001
            self.errors_internal += 1

    def error(self, n: int = 1) -> None:
        """Count errors that are not tied to one request (a failed step, a retry)."""
        try:
            with self._lock:
                self._errors += int(n)
            self._maybe_flush()
        except Exception:  # noqa: BLE001
            self.errors_internal += 1

    @contextlib.contextmanager
    def timed_request(self):
        """Time the block as one request; an exception counts as an error and is re-raised unchanged."""
        t0 = time.perf_counter()
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            self.request(time.perf_counter() - t0, error=failed)

    def _maybe_flush(self) -> None:
        if time.monotonic() - self._last_flush >= self.flush_s:
            self.flush()

    def flush(self) -> None:
        """Send what was recorded since the last flush (normally automatic)."""
        try:
            with self._lock:
                self._last_flush = time.monotonic()
                if not (self._gauges or self._requests or self._errors):
                    return
                msg = {"job": self.job, "g": self._gauges}
                if self._requests:
                    msg["lat"] = [self._lat_sum, self._requests, self._lat_max]
                if self._errors:
                    msg["err"] = self._errors
                self._gauges, self._lat_sum, self._lat_max, self._requests, self._errors = {}, 0.0, 0.0, 0, 0
            data = json.dumps(msg, separators=(",", ":")).encode()[:_MAX_DATAGRAM]
            try:
                self._sock.sendto(data, self._addr)
                self.sent += 1
            except OSError:  # buffer full, or no agent listening (ECONNREFUSED): drop, never block
                self.dropped += 1
        except Exception:  # noqa: BLE001
            self.errors_internal += 1


_default: JobReporter | None = None


def _reporter() -> JobReporter:
    global _default
    if _default is None:
        _default = JobReporter()
    return _default


def report(**values) -> None:
    """Module-level :meth:`JobReporter.report` on a reporter for this process's job."""
    try:
        _reporter().report(**values)
    except Exception:  # noqa: BLE001
        pass


def request(latency_s: float, error: bool = False) -> None:
    try:
        _reporter().request(latency_s, error)
    except Exception:  # noqa: BLE001
        pass


def error(n: int = 1) -> None:
    try:
        _reporter().error(n)
    except Exception:  # noqa: BLE001
        pass


def timed_request():
    return _reporter().timed_request()
