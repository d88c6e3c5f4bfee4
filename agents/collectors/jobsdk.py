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
import re
import socket
from dataclasses import dataclass, field

from pydantic import Field, field_validator

from agents.collectors.base import Collector, CollectorConfig, Sample

log = logging.getLogger("gpuwatch.agent.jobsdk")

_KNOWN = {"step": "job_step", "loss": "job_loss", "grad_norm": "job_grad_norm", "learning_rate": "job_learning_rate",
          "tokens_per_s": "job_tokens_per_s"}
_EXTRA = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,59}$")


class JobSdkConfig(CollectorConfig):
    #: host:port to listen on. Keep it on loopback: jobs on this node only.
    listen: str = "127.0.0.1:9125"
    stale_s: float = Field(default=120.0, gt=0)
    max_jobs: int = Field(default=256, ge=1)

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
        self._counts = {"datagrams": 0, "malformed": 0, "dropped_jobs": 0}
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
            except (ValueError, TypeError, KeyError, AttributeError):
                self._counts["malformed"] += 1

    def _apply(self, msg: dict, now: float) -> None:
        name = str(msg["job"])[:256]
        job = self._jobs.get(name)
        if job is None:
            if len(self._jobs) >= self.config.max_jobs:
                self._counts["dropped_jobs"] += 1
                return
            job = self._jobs[name] = _Job()
        job.seen = now
        for k, v in (msg.get("g") or {}).items():
            if isinstance(v, str):  # "nan"/"inf": the SDK's spelling of a non-finite value
                if k == "loss":
                    job.nonfinite += 1
                continue
            metric = _KNOWN.get(k) or (f"job_{k}" if _EXTRA.match(k) else None)
            if metric is not None:
                job.gauges[metric] = float(v)
        if "lat" in msg:
            s, n, mx = msg["lat"]
            job.lat_sum += float(s)
            job.lat_n += int(n)
            job.requests += int(n)
            job.lat_max = max(job.lat_max, float(mx))
        job.errors += int(msg.get("err", 0))

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

