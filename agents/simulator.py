"""A simulated GPU cluster with injectable faults, for the demo, tests and benchmarks.

Each node runs one training job on all of its GPUs. Load follows a diurnal
curve and jobs stop and start, so the fault-free data is not flat. Physics is
coarse but consistent: power follows utilisation, temperature follows power
with lag, clocks drop when hot. Faults bend those signals the way real failures
do, and every fault records its onset and the GPUs it touches, so detection
quality can be measured against ground truth.

>>> cluster = SimulatedCluster(nodes=2, gpus=2, seed=1, start_ts=1_700_000_000.0)
>>> batches, events = cluster.tick()
>>> len(batches), batches[0]["node"]
(2, 'node-0')
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

FAULT_KINDS = (
    "thermal_runaway",     # temperature climbs steadily past the throttle point
    "ecc_storm",           # single- then double-bit ECC errors pile up
    "xid79",               # GPU falls off the bus: XID 79, then its samples stop
    "straggler",           # one GPU slow (clocks, util) while its peers are busy
    "memory_leak",         # framebuffer use grows linearly towards full
    "nvlink_degradation",  # NVLink CRC errors rise, NVLink throughput drops
    "stalled_gpu",         # 0% utilisation inside a running job
    "loss_divergence",     # the job's loss climbs and turns NaN-like large
)

_FAULT_SPEC = re.compile(r"^(?P<kind>[a-z0-9_]+)@(?P<node>[A-Za-z0-9._-]+)/(?P<gpu>\d+):(?P<start>\d+)(?:\+(?P<dur>\d+))?$")

FB_TOTAL = 80 * 2**30
POWER_LIMIT_W = 700.0


@dataclass(frozen=True)
class Fault:
    """One injected fault: ``KIND@NODE/GPU:START[+DURATION]`` in ticks."""

    kind: str
    node: str
    gpu: int
    start: int
    duration: int | None = None

    @classmethod
    def parse(cls, spec: str) -> "Fault":
        """
        >>> Fault.parse("thermal_runaway@node-1/3:20+60")
        Fault(kind='thermal_runaway', node='node-1', gpu=3, start=20, duration=60)
        """
        m = _FAULT_SPEC.match(spec.strip())
        if not m:
            raise ValueError(f"fault {spec!r} is not KIND@NODE/GPU:START[+DURATION], "
                             f"e.g. thermal_runaway@node-1/3:20+60")
        if m["kind"] not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {m['kind']!r}; choose from {', '.join(FAULT_KINDS)}")
        return cls(m["kind"], m["node"], int(m["gpu"]), int(m["start"]),
                   int(m["dur"]) if m["dur"] else None)

    def active(self, tick: int) -> bool:
        return tick >= self.start and (self.duration is None or tick < self.start + self.duration)

    def age(self, tick: int) -> int:
        return tick - self.start


@dataclass
class _Gpu:
    index: int
    uuid: str
    temp: float = 35.0
    fb_used: float = 2 * 2**30
    energy_j: float = 0.0
    ecc_sbe: int = 0
    ecc_dbe: int = 0
    pcie_replay: int = 0
    nvlink_crc: int = 0
    retired_pages: int = 0
    alive: bool = True
    speed: float = 1.0  # per-GPU manufacturing variation in clocks/throughput


@dataclass
class _Node:
    name: str
    gpus: list[_Gpu]
    job: str
    job_running: bool = True
    job_ticks_left: int = 0
    loss: float = 3.0
    step: int = 0


@dataclass
class SimulatedCluster:
    """A cluster of ``nodes`` × ``gpus`` that advances one scrape per :meth:`tick`."""

    nodes: int = 4
    gpus: int = 8
    seed: int = 0
    start_ts: float = 0.0
    interval: float = 1.0
    faults: list[Fault] = field(default_factory=list)
    #: Mean ticks between job restarts (a job stops for a while, then a new one starts).
    job_churn_ticks: int = 4 * 3600
    #: Length of the simulated day, in ticks, for the diurnal load curve.
    day_ticks: int = 24 * 3600
    job_metrics: bool = True
    #: How many consecutive nodes share one training job.
    nodes_per_job: int = 2

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self.tick_no = 0
        self._nodes = [
            _Node(
                name=f"node-{n}",
                gpus=[_Gpu(g, f"GPU-{self.seed:04x}{n:04x}-{g:04x}-sim",
                           speed=float(self._rng.normal(1.0, 0.01))) for g in range(self.gpus)],
                job=f"job-{n // self.nodes_per_job}",
                job_ticks_left=int(self._rng.exponential(self.job_churn_ticks)) + 60,
            )
            for n in range(self.nodes)
        ]
        names = {n.name for n in self._nodes}
        for f in self.faults:
            if f.node not in names:
                raise ValueError(f"fault {f.kind} targets {f.node!r}, which is not one of node-0..node-{self.nodes - 1}")
            if not 0 <= f.gpu < self.gpus:
                raise ValueError(f"fault {f.kind} targets GPU {f.gpu}; nodes have GPUs 0..{self.gpus - 1}")

    @property
    def node_names(self) -> list[str]:
        return [n.name for n in self._nodes]

    def _faults_for(self, node: str, gpu: int) -> list[Fault]:
        return [f for f in self.faults if f.node == node and f.gpu == gpu and f.active(self.tick_no)]

    def tick(self) -> tuple[list[dict], list[dict]]:
        """Advance one scrape; returns (metric batch dicts, node event dicts)."""
        ts = self.start_ts + self.tick_no * self.interval
        diurnal = 0.85 + 0.15 * math.sin(2 * math.pi * self.tick_no / self.day_ticks)
        batches, events = [], []
        for node in self._nodes:
            self._advance_job(node)
            samples = []
            for gpu in node.gpus:
                samples.extend(self._gpu_samples(node, gpu, diurnal, ts, events))
            if self.job_metrics and node.job_running:
                samples.extend(self._job_samples(node))
            if samples:
                batches.append({"v": 1, "kind": "metrics", "node": node.name, "ts": ts,
                                "seq": self.tick_no, "samples": samples})
        self.tick_no += 1
        return batches, events

    def _advance_job(self, node: _Node) -> None:
        node.job_ticks_left -= 1
        if node.job_ticks_left <= 0:
            node.job_running = not node.job_running
            if node.job_running:
                node.job = f"job-{node.name}-{self.tick_no}"
                node.loss, node.step = 3.0, 0
                node.job_ticks_left = int(self._rng.exponential(self.job_churn_ticks)) + 60
            else:
                node.job_ticks_left = int(self._rng.integers(60, 600))

    def _gpu_samples(self, node: _Node, gpu: _Gpu, diurnal: float, ts: float, events: list[dict]) -> list[dict]:
        if not gpu.alive:
            return []
        faults = {f.kind: f for f in self._faults_for(node.name, gpu.index)}
        rng = self._rng
        if "xid79" in faults:
            gpu.alive = False
            events.append({"v": 1, "kind": "event", "node": node.name, "ts": ts, "source": "xid", "code": 79,
                           "gpu": gpu.index, "severity": "critical", "action": "reboot",
                           "title": "GPU has fallen off the bus",
                           "message": f"NVRM: Xid (PCI:0000:{gpu.index + 0x17:02x}:00): 79, pid=0, "
                                      "GPU has fallen off the bus."})
            return []
        busy = node.job_running
        util = (97.0 * diurnal + rng.normal(0, 1.5)) if busy else max(0.0, rng.normal(0.5, 0.5))
        sm_clock = 1980.0 * gpu.speed + rng.normal(0, 5)
        if "straggler" in faults:
            util *= 0.55
            sm_clock *= 0.6
        if "stalled_gpu" in faults:
            util = max(0.0, rng.normal(0.3, 0.3))
        util = float(np.clip(util, 0, 100))
        power = 90 + (POWER_LIMIT_W - 140) * util / 100 + rng.normal(0, 8)
        target_temp = 30 + power * 0.055
        if "thermal_runaway" in faults:
            target_temp = 30 + power * 0.055 + 1.2 * faults["thermal_runaway"].age(self.tick_no)
        gpu.temp += 0.25 * (target_temp - gpu.temp) + rng.normal(0, 0.3)
        if gpu.temp > 87:
            sm_clock *= max(0.5, 1 - (gpu.temp - 87) * 0.03)
        gpu.energy_j += power * self.interval
        fb_target = (0.72 * FB_TOTAL if busy else 2 * 2**30)
        if "memory_leak" in faults:
            fb_target = min(FB_TOTAL * 0.999, 0.72 * FB_TOTAL + faults["memory_leak"].age(self.tick_no) * 0.25 * 2**30)
            gpu.fb_used = fb_target
        else:
            gpu.fb_used += 0.3 * (fb_target - gpu.fb_used)
        if "ecc_storm" in faults:
            gpu.ecc_sbe += int(rng.poisson(40))
            if rng.random() < 0.1:
                gpu.ecc_dbe += 1
                gpu.retired_pages += 1
        elif rng.random() < 0.0005:
            gpu.ecc_sbe += 1
        nvlink_bw = (48e9 if busy else 0.2e9) * (util / 100 + 0.01) * diurnal
        if "nvlink_degradation" in faults:
            gpu.nvlink_crc += int(rng.poisson(25))
            nvlink_bw *= 0.35
        if rng.random() < 0.001:
            gpu.pcie_replay += 1
        labels = {"job": node.job, "pod": f"{node.job}-worker-{node.name[-1]}"} if busy else {}
        values = (
            ("gpu_util_pct", util, "%"),
            ("mem_util_pct", float(np.clip(util * 0.6 + rng.normal(0, 2), 0, 100)), "%"),
            ("fb_used_bytes", gpu.fb_used, "B"),
            ("fb_free_bytes", FB_TOTAL - gpu.fb_used, "B"),
            ("sm_clock_mhz", sm_clock, "MHz"),
            ("mem_clock_mhz", 2619.0, "MHz"),
            ("gpu_temp_c", gpu.temp, "C"),
            ("mem_temp_c", gpu.temp + 4 + rng.normal(0, 0.3), "C"),
            ("power_w", power, "W"),
            ("power_limit_w", POWER_LIMIT_W, "W"),
            ("energy_j", gpu.energy_j, "J"),
            ("pstate", 0.0 if busy else 8.0, ""),
            ("pcie_replay_total", float(gpu.pcie_replay), ""),
            ("pcie_tx_bytes_s", 2e9 * util / 100 + abs(rng.normal(0, 1e7)), "B/s"),
            ("pcie_rx_bytes_s", 3e9 * util / 100 + abs(rng.normal(0, 1e7)), "B/s"),
            ("nvlink_tx_bytes_s", nvlink_bw, "B/s"),
            ("nvlink_rx_bytes_s", nvlink_bw * (1 + rng.normal(0, 0.01)), "B/s"),
            ("nvlink_crc_errors_total", float(gpu.nvlink_crc), ""),
            ("ecc_sbe_volatile_total", float(gpu.ecc_sbe), ""),
            ("ecc_dbe_volatile_total", float(gpu.ecc_dbe), ""),
            ("retired_pages_total", float(gpu.retired_pages), ""),
            ("throttle_thermal", 1.0 if gpu.temp > 87 else 0.0, ""),
        )
        return [{"gpu": gpu.index, "uuid": gpu.uuid, "metric": m, "value": round(float(v), 3), "unit": u,
                 **({"labels": labels} if labels else {})} for m, v, u in values]

    def _job_samples(self, node: _Node) -> list[dict]:
        rng = self._rng
        node.step += 1
        diverging = any(f.kind == "loss_divergence" and f.node == node.name and f.active(self.tick_no)
                        for f in self.faults)
        if diverging:
            node.loss = node.loss * 1.15 + 0.05
        else:
            node.loss = max(0.3, node.loss * 0.9995 + rng.normal(0, 0.01))
        alive = [g for g in node.gpus if g.alive]
        tokens = 3200.0 * len(alive) * (1 + rng.normal(0, 0.02))
        labels = {"job": node.job}
        return [{"gpu": -1, "metric": m, "value": round(float(min(v, 1e30)), 5), "unit": u, "labels": labels}
                for m, v, u in (("job_step", node.step, ""), ("job_loss", node.loss, ""),
                                ("job_grad_norm", abs(rng.normal(1.0, 0.1)) * (10 if diverging else 1), ""),
                                ("job_tokens_per_s", tokens, "tok/s"), ("job_learning_rate", 3e-4, ""))]
