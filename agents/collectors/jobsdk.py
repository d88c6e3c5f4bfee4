"""Job SDK receiver: the agent's end of ``agents.jobsdk``, turning job reports into samples.

It listens for the SDK's UDP datagrams on loopback and, each scrape, emits per
job (node-level, ``labels={"job": ...}``): the latest ``job_step``,
``job_loss``, ``job_grad_norm``, ``job_learning_rate`` and
``job_tokens_per_s``; the mean and max ``job_request_latency_s`` of requests
seen this scrape; and cumulative ``job_requests_total``, ``job_errors_total``
and ``job_loss_nonfinite_total`` (a NaN or infinite loss is a signal, but the
wire refuses NaN, so it is counted instead). A job that stops reporting for
``stale_s`` is forgotten.
"""

from __future__ import annotations

import json
import logging
import math
import re
import socket
from dataclasses import dataclass, field

from pydantic import Field, field_validator

from agents.collectors.base import Collector, CollectorConfig, Sample

log = logging.getLogger("gpuwatch.agent.jobsdk")

_KNOWN = {"step": "job_step", "loss": "job_loss", "grad_norm": "job_grad_norm", "learning_rate": "job_learning_rate",
          "tokens_per_s": "job_tokens_per_s"}
_EXTRA = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,59}$")
_KNOWN_METRICS = frozenset(_KNOWN.values())
#: Largest request or error count one datagram may add (a 400-digit one overflowed every later scrape).
_MAX_COUNT = 10**9


def _finite(v) -> float | None:
    """``v`` as a finite float, or None (a string, a bool, NaN, an infinity, or too large for a float)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    try:
        f = float(v)
    except OverflowError:
        return None
    return f if math.isfinite(f) else None


class JobSdkConfig(CollectorConfig):
    #: host:port to listen on. Keep it on loopback: jobs on this node only.
    listen: str = "127.0.0.1:9125"
    stale_s: float = Field(default=120.0, gt=0)
    max_jobs: int = Field(default=256, ge=1)
    #: Gauges one job may report besides the known ones (step, loss, ...): each is a series in Kafka and
    #: ClickHouse, so a job sending thousands of keys would crowd out every other job's samples.
    max_extra_gauges: int = Field(default=32, ge=0)

    @field_validator("listen")
    @classmethod
    def _hostport(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError(f"listen must be host:port, e.g. 127.0.0.1:9125 (got {v!r})")
        return v


@dataclass
class _Job:
    gauges: dict[str, float] = field(default_factory=dict)
    lat_sum: float = 0.0
    lat_n: int = 0
    lat_max: float = 0.0
    requests: int = 0
    errors: int = 0
    nonfinite: int = 0
    seen: float = 0.0


class JobSdkCollector(Collector):
    name = "jobsdk"
    config_model = JobSdkConfig

    def __init__(self, config=None, context=None) -> None:
        super().__init__(config, context)
        self._sock: socket.socket | None = None
        self._jobs: dict[str, _Job] = {}
        self._counts = {"datagrams": 0, "malformed": 0, "dropped_jobs": 0, "dropped_gauges": 0}
        self.port = 0

    def start(self) -> None:
        host, _, port = self.config.listen.rpartition(":")
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 2**20)
        self._sock.bind((host, int(port)))
        self._sock.setblocking(False)
        self.port = self._sock.getsockname()[1]

    def _drain(self, now: float) -> None:
        for _ in range(100_000):
            try:
                data = self._sock.recv(65536)
            except BlockingIOError:
                return
            self._counts["datagrams"] += 1
            try:
                msg = json.loads(data)
                self._apply(msg, now)
            except (ValueError, TypeError, KeyError, AttributeError, OverflowError, RecursionError):
                self._counts["malformed"] += 1  # this datagram only: nothing of it was applied

    def _apply(self, msg: dict, now: float) -> None:
        """One datagram, checked whole before anything of it is kept: a bad one is counted malformed and
        changes nothing. Non-finite numbers never become samples (the wire refuses NaN, and one sank the
        node's whole batch); a non-finite loss is counted as the signal it is."""
        name = str(msg["job"])[:256]
        gauges: dict[str, float] = {}
        nonfinite = 0
        raw = msg.get("g") or {}
        if not isinstance(raw, dict):
            raise TypeError("g must be an object")
        for k, v in raw.items():
            value = _finite(v)
            if value is None:  # "nan"/"inf" (the SDK's spelling), NaN, Infinity, 1e400, or not a number
                nonfinite += k == "loss"
                continue
            metric = _KNOWN.get(k) or (f"job_{k}" if _EXTRA.match(k) else None)
            if metric is not None:
                gauges[metric] = value
        lat = None
        if "lat" in msg:
            s, n, mx = msg["lat"]
            s, mx, n = _finite(s), _finite(mx), int(n)
            if s is None or mx is None or not 0 <= n <= _MAX_COUNT:
                raise ValueError("lat must be [sum, count, max] of finite numbers")
            lat = (s, n, mx)
        err = int(msg.get("err", 0))
        if not 0 <= err <= _MAX_COUNT:
            raise ValueError("err out of range")
        job = self._jobs.get(name)
        if job is None:
            if len(self._jobs) >= self.config.max_jobs:
                self._counts["dropped_jobs"] += 1
                return
            job = self._jobs[name] = _Job()
        job.seen = now
        job.nonfinite += nonfinite
        for metric, value in gauges.items():
            if metric not in job.gauges and metric not in _KNOWN_METRICS:
                if sum(m not in _KNOWN_METRICS for m in job.gauges) >= self.config.max_extra_gauges:
                    self._counts["dropped_gauges"] += 1
                    continue
            job.gauges[metric] = value
        if lat is not None:
            job.lat_sum += lat[0]
            job.lat_n += lat[1]
            job.requests += lat[1]
            job.lat_max = max(job.lat_max, lat[2])
        job.errors += err

    def collect(self, now: float) -> list[Sample]:
        if self._sock is None:
            return []
        self._drain(now)
        out: list[Sample] = []
        for name, job in list(self._jobs.items()):
            if now - job.seen > self.config.stale_s:
                del self._jobs[name]
                continue
            labels = {"job": name}

            def add(metric: str, value: float, unit: str = "") -> None:
                out.append({"gpu": -1, "uuid": "", "metric": metric, "value": value, "unit": unit, "labels": labels})

            for metric, value in job.gauges.items():
                add(metric, value, "tok/s" if metric == "job_tokens_per_s" else "")
            if job.lat_n:
                add("job_request_latency_s", job.lat_sum / job.lat_n, "s")
                add("job_request_latency_max_s", job.lat_max, "s")
                job.lat_sum, job.lat_n, job.lat_max = 0.0, 0, 0.0
            add("job_requests_total", float(job.requests))
            add("job_errors_total", float(job.errors))
            if job.nonfinite:
                add("job_loss_nonfinite_total", float(job.nonfinite))
        return out

    def stats(self) -> dict[str, int]:
        return {**self._counts, "jobs": len(self._jobs)}

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()

