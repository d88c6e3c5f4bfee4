"""A simulated GPU cluster with injectable faults, for the demo, tests and benchmarks.

Physics is coarse but consistent: power follows utilisation, temperature
follows power with lag, clocks drop when hot or idle. Faults bend those signals
the way real failures do, at a chosen *magnitude*, and every fault records its
onset and the GPU it touches, so detection quality can be measured against
ground truth.

How the workload behaves comes from a :class:`~agents.simulator_config.SimProfile`.
The ``classic`` profile (the default) is the original cluster: one training job
per node pair, a diurnal swing, jobs that stop and start. The ``tune`` and
``holdout`` profiles add the regimes real clusters show: idle gaps between jobs,
data-loader stalls, checkpoint and evaluation phases (GPUs entering them a tick
or two apart), inference nodes whose per-GPU load follows the day, mixed GPU
models, GPUs with a chronic (healthy) correctable-error rate, and fatal XIDs
that are preceded, or not, by rising error counters.

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

from agents.simulator_config import DEFAULT_MAGNITUDE, MODELS, PRECURSORS, PROFILES, SimProfile

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

_FAULT_SPEC = re.compile(r"^(?P<kind>[a-z0-9_]+)@(?P<node>[A-Za-z0-9._-]+)/(?P<gpu>\d+):(?P<start>\d+)"
                         r"(?:\+(?P<dur>\d+))?(?:\*(?P<mag>[0-9.]+))?$")

GIB = 2**30
FB_TOTAL = 80 * GIB
POWER_LIMIT_W = 700.0


@dataclass(frozen=True)
class Fault:
    """One injected fault: ``KIND@NODE/GPU:START[+DURATION][*MAGNITUDE]`` in ticks.

    ``magnitude`` is in the kind's unit (``agents.simulator_config.MAGNITUDE_UNIT``);
    None means the severe default. An ``xid79`` with ``precursor_s`` > 0 is preceded
    for that long by a rising error signal (``precursor``, one of ``PRECURSORS``).
    """

    kind: str
    node: str
    gpu: int
    start: int
    duration: int | None = None
    magnitude: float | None = None
    precursor_s: int = 0
    precursor: str | None = None

    @classmethod
    def parse(cls, spec: str) -> "Fault":
        """
        >>> f = Fault.parse("thermal_runaway@node-1/3:20+60*0.3")
        >>> f.kind, f.node, f.gpu, f.start, f.duration, f.magnitude
        ('thermal_runaway', 'node-1', 3, 20, 60, 0.3)
        """
        m = _FAULT_SPEC.match(spec.strip())
        if not m:
            raise ValueError(f"fault {spec!r} is not KIND@NODE/GPU:START[+DURATION][*MAGNITUDE], "
                             f"e.g. thermal_runaway@node-1/3:20+60")
        if m["kind"] not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {m['kind']!r}; choose from {', '.join(FAULT_KINDS)}")
        return cls(m["kind"], m["node"], int(m["gpu"]), int(m["start"]),
                   int(m["dur"]) if m["dur"] else None, float(m["mag"]) if m["mag"] else None)

    @property
    def size(self) -> float:
        return DEFAULT_MAGNITUDE[self.kind] if self.magnitude is None else self.magnitude

    def active(self, tick: int) -> bool:
        return tick >= self.start and (self.duration is None or tick < self.start + self.duration)

    def in_precursor(self, tick: int) -> bool:
        return self.precursor_s > 0 and self.start - self.precursor_s <= tick < self.start

    def age(self, tick: int) -> int:
        return tick - self.start


@dataclass
class _Node:
    name: str
    gpus: int
    model: object
    serving: bool
    job: str
    rng_speed: np.ndarray
    job_running: bool = True
    job_ticks_left: int = 0
    loss: float = 3.0
    step: int = 0
    job_util: float = 97.0
    job_fb: float = 0.72
    phase: str = "run"
    prev_phase: str = "run"
    phase_since: int = 0
    phase_left: int = 0
    phase_factor: float = 1.0
    lag: np.ndarray | None = None
    before_divergence: tuple | None = None
    next_ckpt: int = 0
    next_eval: int = 0
    temp: np.ndarray = None
    fb: np.ndarray = None
    energy: np.ndarray = None
    sbe: np.ndarray = None
    dbe: np.ndarray = None
    replay: np.ndarray = None
    crc: np.ndarray = None
    retired: np.ndarray = None
    alive: np.ndarray = None
    chronic: np.ndarray = None
    load_dev: np.ndarray = None
    remap_pending: np.ndarray = None
    link_width: np.ndarray = None
    link_gen: np.ndarray = None


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
    #: Noise, hardware and workload regimes (a SimProfile or a name in PROFILES).
    profile: SimProfile | str = "classic"

    def __post_init__(self) -> None:
        if isinstance(self.profile, str):
            if self.profile not in PROFILES:
                raise ValueError(f"unknown simulator profile {self.profile!r}; choose from {', '.join(PROFILES)}")
            self.profile = PROFILES[self.profile]
        p = self.profile
        self._rng = np.random.default_rng(self.seed)
        rng = self._rng
        self.tick_no = 0
        self._nodes = []
        g = self.gpus
        for n in range(self.nodes):
            speed = rng.normal(1.0, p.chip_spread, g)
            model = MODELS[p.models[int(rng.integers(len(p.models)))]] if p.regimes else MODELS["h100"]
            serving = p.regimes and rng.random() < p.inference_share
            node = _Node(name=f"node-{n}", gpus=g, model=model, serving=serving,
                         job=f"job-{n // self.nodes_per_job}", rng_speed=speed,
                         job_ticks_left=int(rng.exponential(self.job_churn_ticks)) + 60)
            node.temp = np.full(g, 35.0)
            node.fb = np.full(g, 2.0 * GIB)
            for a in ("energy", "sbe", "dbe", "replay", "crc", "retired", "remap_pending", "load_dev"):
                setattr(node, a, np.zeros(g))
            node.alive = np.ones(g, bool)
            node.link_width, node.link_gen = np.full(g, 16.0), np.full(g, 5.0)
            node.chronic = np.where(rng.random(g) < p.chronic_share, p.chronic_factor, 1.0)
            node.lag = np.zeros(g, int)
            if p.regimes:
                node.job_util = float(rng.uniform(*p.job_util))
                node.job_fb = float(rng.uniform(0.55, 0.85))
                node.next_ckpt = int(rng.uniform(0.3, 1.0) * p.checkpoint_every_s) if p.checkpoint_every_s else -1
                node.next_eval = int(rng.uniform(0.3, 1.0) * p.eval_every_s) if p.eval_every_s else -1
            self._nodes.append(node)
        names = {n.name for n in self._nodes}
        for f in self.faults:
            if f.node not in names:
                raise ValueError(f"fault {f.kind} targets {f.node!r}, which is not one of node-0..node-{self.nodes - 1}")
            if not 0 <= f.gpu < self.gpus:
                raise ValueError(f"fault {f.kind} targets GPU {f.gpu}; nodes have GPUs 0..{self.gpus - 1}")
        self._by_node: dict[str, list[Fault]] = {}
        for f in self.faults:
            self._by_node.setdefault(f.node, []).append(f)

    @property
    def node_names(self) -> list[str]:
        return [n.name for n in self._nodes]

    def serving_nodes(self) -> set[str]:
        """Nodes serving inference (no training job, per-GPU load)."""
        return {n.name for n in self._nodes if n.serving}

    def job_running(self, node: str) -> bool:
        """Whether ``node`` runs a training job in its busy phase now (a straggler or stall can show)."""
        n = next(x for x in self._nodes if x.name == node)
        return n.job_running and not n.serving and n.phase == "run"

    def tick(self) -> tuple[list[dict], list[dict]]:
        """Advance one scrape; returns (metric batch dicts, node event dicts)."""
        ts = self.start_ts + self.tick_no * self.interval
        diurnal = 0.85 + 0.15 * math.sin(2 * math.pi * self.tick_no / self.day_ticks)
        batches, events = [], []
        for node in self._nodes:
            self._advance_job(node)
            samples = self._gpu_samples(node, diurnal, ts, events)
            if self.job_metrics and node.job_running and not node.serving:
                samples.extend(self._job_samples(node))
            if samples:
                batches.append({"v": 1, "kind": "metrics", "node": node.name, "ts": ts,
                                "seq": self.tick_no, "samples": samples})
        self.tick_no += 1
        return batches, events

    # -- workload ----------------------------------------------------------------------------
    def _advance_job(self, node: _Node) -> None:
        p, rng = self.profile, self._rng
        if node.serving:
            return
        node.job_ticks_left -= 1
        if node.job_ticks_left <= 0:
            node.job_running = not node.job_running
            if node.job_running:
                node.job = f"job-{node.name}-{self.tick_no}"
                node.loss, node.step = 3.0, 0
                node.job_ticks_left = int(rng.exponential(self.job_churn_ticks)) + 60
                if p.regimes:
                    node.job_util = float(rng.uniform(*p.job_util))
                    node.job_fb = float(rng.uniform(0.55, 0.85))
            else:
                lo, hi = p.idle_gap_s if p.regimes else (60, 600)
                node.job_ticks_left = int(rng.integers(lo, hi))
        if not p.regimes:
            return
        # phases of a running job: run, data-loader stall, checkpoint, evaluation
        if node.phase != "run":
            node.phase_left -= 1
            if node.phase_left <= 0 or not node.job_running:
                self._set_phase(node, "run", 1.0)
            return
        if not node.job_running:
            return
        if p.checkpoint_every_s and node.next_ckpt >= 0:
            node.next_ckpt -= 1
            if node.next_ckpt <= 0:
                node.next_ckpt = int(rng.uniform(0.8, 1.2) * p.checkpoint_every_s)
                self._set_phase(node, "ckpt", 0.0, int(rng.integers(*p.checkpoint_s)))
                return
        if p.eval_every_s and node.next_eval >= 0:
            node.next_eval -= 1
            if node.next_eval <= 0:
                node.next_eval = int(rng.uniform(0.8, 1.2) * p.eval_every_s)
                self._set_phase(node, "eval", p.eval_util, int(rng.integers(*p.eval_s)))
                return
        if rng.random() < p.loader_stalls_per_h / 3600.0:
            self._set_phase(node, "stall", float(rng.uniform(0.05, 0.5)), int(rng.integers(*p.loader_stall_s)))

    def _set_phase(self, node: _Node, phase: str, factor: float, ticks: int = 0) -> None:
        node.prev_phase, node.phase, node.phase_factor, node.phase_left = node.phase, phase, factor, ticks
        node.phase_since = self.tick_no
        lag = self.profile.phase_lag
        node.lag = self._rng.integers(0, lag + 1, node.gpus) if lag else np.zeros(node.gpus, int)

    def _phase_factor(self, node: _Node) -> np.ndarray:
        """Each GPU's share of the job's busy load this tick (GPUs enter a phase up to ``phase_lag`` apart)."""
        f = {"run": 1.0, "ckpt": 0.0}.get(node.phase, node.phase_factor)
        if node.lag.any():
            prev = 1.0 if node.prev_phase == "run" else (0.0 if node.prev_phase == "ckpt" else node.phase_factor)
            return np.where(self.tick_no - node.phase_since >= node.lag, f, prev)
        return np.full(node.gpus, f)

    # -- one node's GPUs, vectorised ---------------------------------------------------------
    def _gpu_samples(self, node: _Node, diurnal: float, ts: float, events: list[dict]) -> list[dict]:
        p, rng, t, g = self.profile, self._rng, self.tick_no, node.gpus
        model = node.model
        faults = [f for f in self._by_node.get(node.name, ()) if f.active(t) or f.in_precursor(t)]
        for f in faults:
            if f.kind == "xid79" and f.active(t) and node.alive[f.gpu]:
                node.alive[f.gpu] = False
                events.append({"v": 1, "kind": "event", "node": node.name, "ts": ts, "source": "xid", "code": 79,
                               "gpu": f.gpu, "severity": "critical", "action": "reboot",
                               "title": "GPU has fallen off the bus",
                               "message": f"NVRM: Xid (PCI:0000:{f.gpu + 0x17:02x}:00): 79, pid=0, "
                                          "GPU has fallen off the bus."})
        if not node.alive.any():
            return []
        busy = node.job_running
        noise = rng.normal(0, 1, (6, g))
        if node.serving:
            node.load_dev = 0.97 * node.load_dev + rng.normal(0, 0.02, g)
            phase = 2 * math.pi * t / self.day_ticks
            load = 0.15 + 0.7 * (0.5 + 0.5 * math.sin(phase)) * (1 + 0.1 * math.sin(7.3 * phase))
            util = 100.0 * np.clip(load * (1 + node.load_dev), 0.0, 1.0) + p.util_sigma * noise[0]
            busy_mask = np.ones(g, bool)
        elif busy:
            level = node.job_util if p.regimes else 97.0 * diurnal
            util = level * self._phase_factor(node) + p.util_sigma * noise[0]
            busy_mask = np.ones(g, bool)
        else:
            util = np.maximum(0.0, 0.5 + 0.5 * noise[0])
            busy_mask = np.zeros(g, bool)
        clock_base = model.sm_clock_mhz * node.rng_speed
        sm_clock = clock_base + p.clock_sigma * noise[1]
        util_mult, clock_mult = np.ones(g), np.ones(g)
        temp_extra, fb_extra = np.zeros(g), np.zeros(g)
        bw_mult = np.ones(g)
        for f in faults:
            k, m, i = f.kind, f.size, f.gpu
            if k == "xid79":
                if f.in_precursor(t):
                    self._precursor(node, f, t)
                continue
            if k == "straggler":
                util_mult[i] *= 1 - m
                clock_mult[i] *= 1 - 0.75 * m
            elif k == "stalled_gpu":
                util[i] = max(0.0, rng.normal(0.3, 0.3))
            elif k == "thermal_runaway":
                temp_extra[i] = m * f.age(t)
            elif k == "memory_leak":
                fb_extra[i] = f.age(t) * m * GIB
            elif k == "ecc_storm":
                node.sbe[i] += rng.poisson(m)
                if rng.random() < 0.0025 * m:
                    node.dbe[i] += 1
                    node.retired[i] += 1
            elif k == "nvlink_degradation":
                node.crc[i] += rng.poisson(m)
                bw_mult[i] *= max(0.35, 1 - 0.1 * m)
        util = np.clip(util * util_mult, 0, 100)
        if p.regimes:  # an idle GPU drops its clocks
            sm_clock = np.where(util < 5, model.idle_clock_mhz + p.clock_sigma * noise[1], sm_clock)
        sm_clock = sm_clock * clock_mult
        limit = model.power_limit_w if p.regimes else POWER_LIMIT_W
        idle_w = model.idle_power_w if p.regimes else 90.0
        power = idle_w + (limit - idle_w - 50) * util / 100 + p.power_sigma * noise[2]
        target_temp = 30 + power * (38.5 / limit) + temp_extra
        node.temp += 0.25 * (target_temp - node.temp) + p.temp_sigma * noise[3]
        hot = node.temp > 87
        sm_clock = np.where(hot, sm_clock * np.maximum(0.5, 1 - (node.temp - 87) * 0.03), sm_clock)
        node.energy += power * self.interval
        fb_total = model.fb_gib * GIB if p.regimes else FB_TOTAL
        if node.serving:  # an inference server preallocates its KV cache: memory barely follows load
            fb_target = np.full(g, (0.6 + 0.05 * load) * fb_total)
        elif busy:
            fb_target = np.full(g, (node.job_fb if p.regimes else 0.72) * fb_total)
            if node.phase == "ckpt":
                fb_target = fb_target + 0.02 * fb_total
        else:
            fb_target = np.full(g, 2.0 * GIB)
        if p.regimes:
            node.fb += 0.3 * (np.minimum(fb_total * 0.999, fb_target + fb_extra) - node.fb)
        else:
            leaking = fb_extra > 0
            node.fb = np.where(leaking, np.minimum(fb_total * 0.999, fb_target + fb_extra),
                               node.fb + 0.3 * (fb_target - node.fb))
        sbe_rate = p.sbe_per_s * node.chronic * self.interval
        node.sbe += rng.poisson(sbe_rate) if p.regimes else (rng.random(g) < 0.0005)
        node.replay += rng.poisson(p.replay_per_s * node.chronic * self.interval) if p.regimes \
            else (rng.random(g) < 0.001)
        nv_scale = np.where(busy_mask, 48e9, 0.2e9) if not node.serving else np.full(g, 4e9)
        nvlink_bw = nv_scale * (util / 100 + 0.01) * (diurnal if not p.regimes else 1.0) * bw_mult
        throttle = (hot | (node.temp > 87)).astype(float)
        cols = [
            ("gpu_util_pct", util, "%"),
            ("mem_util_pct", np.clip(util * 0.6 + 2 * noise[4], 0, 100), "%"),
            ("fb_used_bytes", node.fb, "B"),
            ("fb_free_bytes", fb_total - node.fb, "B"),
            ("sm_clock_mhz", sm_clock, "MHz"),
            ("mem_clock_mhz", np.full(g, 2619.0), "MHz"),
            ("gpu_temp_c", node.temp.copy(), "C"),
            ("mem_temp_c", node.temp + 4 + 0.3 * noise[5], "C"),
            ("power_w", power, "W"),
            ("power_limit_w", np.full(g, limit), "W"),
            ("energy_j", node.energy.copy(), "J"),
            ("pstate", np.where(busy_mask, 0.0, 8.0), ""),
            ("pcie_replay_total", node.replay.copy(), ""),
            ("pcie_tx_bytes_s", 2e9 * util / 100 + np.abs(1e7 * noise[4]), "B/s"),
            ("pcie_rx_bytes_s", 3e9 * util / 100 + np.abs(1e7 * noise[5]), "B/s"),
            ("nvlink_tx_bytes_s", nvlink_bw, "B/s"),
            ("nvlink_rx_bytes_s", nvlink_bw * (1 + 0.01 * noise[2]), "B/s"),
            ("nvlink_crc_errors_total", node.crc.copy(), ""),
            ("ecc_sbe_volatile_total", node.sbe.copy(), ""),
            ("ecc_dbe_volatile_total", node.dbe.copy(), ""),
            ("retired_pages_total", node.retired.copy(), ""),
            ("throttle_thermal", throttle, ""),
        ]
        if p.link_metrics:
            cols += [("remapped_rows_pending", node.remap_pending.copy(), ""),
                     ("throttle_hw_slowdown", self._hw_slowdown(node, faults, t), ""),
                     ("pcie_link_width", node.link_width.copy(), ""), ("pcie_link_gen", node.link_gen.copy(), "")]
        out = []
        alive = node.alive
        for gi in range(g):
            if not alive[gi]:
                continue
            if node.serving:
                labels = {"pod": f"llm-serve-{node.name}-{gi}"}
            elif busy:
                labels = {"job": node.job, "pod": f"{node.job}-worker-{node.name[-1]}"}
            else:
                labels = None
            uuid = f"GPU-{self.seed:04x}{int(node.name.rsplit('-', 1)[-1]):04x}-{gi:04x}-sim"
            for m, v, u in cols:
                s = {"gpu": gi, "uuid": uuid, "metric": m, "value": round(float(v[gi]), 3), "unit": u}
                if labels:
                    s["labels"] = labels
                out.append(s)
        return out

    def _precursor(self, node: _Node, f: Fault, t: int) -> None:
        """A rising error signal before the fatal event (``f.in_precursor(t)``)."""
        r = (t - (f.start - f.precursor_s)) / f.precursor_s
        kind = f.precursor or PRECURSORS[(f.gpu + f.start) % len(PRECURSORS)]
        rng, i = self._rng, f.gpu
        if kind == "ecc_rate":
            node.sbe[i] += rng.poisson(0.4 * r)
        elif kind == "pcie_replay":
            node.replay[i] += rng.poisson(0.6 * r)
        elif kind == "remap_pending":
            node.sbe[i] += rng.poisson(0.1 * r)
            if r > 0.3:
                node.remap_pending[i] = 1.0
        elif kind == "link_downgrade":
            node.replay[i] += rng.poisson(0.1 * r)
            if r > 0.4:
                node.link_width[i] = 8.0
            if r > 0.7:
                node.link_gen[i] = 4.0
        elif kind == "nvlink_crc":
            node.crc[i] += rng.poisson(0.4 * r)

    def _hw_slowdown(self, node: _Node, faults: list[Fault], t: int) -> np.ndarray:
        out = np.zeros(node.gpus)
        for f in faults:
            if f.kind == "xid79" and f.in_precursor(t) and (f.precursor or PRECURSORS[(f.gpu + f.start) % len(
                    PRECURSORS)]) == "link_downgrade":
                out[f.gpu] = float(self._rng.random() < 0.3)
        return out

    def _job_samples(self, node: _Node) -> list[dict]:
        rng = self._rng
        if node.phase in ("ckpt", "eval"):
            return []  # no training steps, so the job SDK reports nothing
        node.step += 1
        faults = self._by_node.get(node.name, ())
        div = next((f for f in faults if f.kind == "loss_divergence" and f.active(self.tick_no)), None)
        if self.profile.regimes:
            if div is not None and node.before_divergence is None:
                node.before_divergence = (div, node.loss, node.step)
            elif div is None and node.before_divergence is not None:
                # the fault is over: the operator restarts the run from its last checkpoint
                _, node.loss, step = node.before_divergence
                node.step = max(0, step - 600)
                node.before_divergence = None
        if div is not None:
            m = div.size
            node.loss = node.loss * m + (0.05 if m >= 1.1 else 0.0)
        elif self.profile.regimes:  # a smooth learning curve, observed through per-batch noise
            node.loss = 0.3 + (node.loss - 0.3) * 0.9995
        else:
            node.loss = max(0.3, node.loss * 0.9995 + rng.normal(0, 0.01))
        observed = node.loss * (1 + rng.normal(0, 0.02)) if self.profile.regimes else node.loss
        alive = int(node.alive.sum())
        rate = node.phase_factor if node.phase == "stall" else 1.0
        tokens = 3200.0 * alive * rate * (1 + rng.normal(0, 0.02))
        labels = {"job": node.job}
        return [{"gpu": -1, "metric": m, "value": round(float(min(v, 1e30)), 5), "unit": u, "labels": labels}
                for m, v, u in (("job_step", node.step, ""), ("job_loss", observed, ""),
                                ("job_grad_norm", abs(rng.normal(1.0, 0.1)) * (10 if div is not None and div.size >= 1.1
                                                                              else 1), ""),
                                ("job_tokens_per_s", tokens, "tok/s"), ("job_learning_rate", 3e-4, ""))]
