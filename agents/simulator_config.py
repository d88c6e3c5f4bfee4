"""What the simulated cluster looks like: noise, GPU models, workload regimes, fault sizes.

:class:`SimProfile` is one frozen description of a cluster's behaviour. Three are named:

- ``classic``: the original simulator (one training job per node pair, a diurnal
  swing, jobs stopping and starting); what the demo and the tests use.
- ``tune``: non-stationary workload (data-loader stalls, checkpoint and evaluation
  phases, idle gaps, inference nodes with a diurnal load, two GPU models), moderate
  noise. Detector parameters are chosen on this one.
- ``holdout``: the same regimes with other rates, more noise (utilisation sigma 4,
  clock sigma 15 MHz, chip spread 3 %), another GPU-model mix and more inference.
  Nothing is tuned on it; the benchmark's targets are judged on it.

Fault *magnitudes* are in each kind's natural unit (see :data:`MAGNITUDE_UNIT`);
:data:`MAGNITUDES` lists, per kind, a barely visible, the issue's "milder" and a
severe size. ``DEFAULT_MAGNITUDE`` is what a fault without a size gets (severe).

>>> PROFILES["holdout"].util_sigma, MAGNITUDES["straggler"][1]
(4.0, 0.2)
"""

from __future__ import annotations

from dataclasses import dataclass

#: The unit of each fault kind's magnitude.
MAGNITUDE_UNIT = {
    "thermal_runaway": "°C/s above normal",
    "ecc_storm": "correctable errors/s (Poisson)",
    "xid79": "(none)",
    "straggler": "slowdown: util x(1-m), clock x(1-0.75m)",
    "memory_leak": "GiB/s",
    "nvlink_degradation": "CRC errors/s (Poisson); bandwidth x max(0.35, 1-0.1m)",
    "stalled_gpu": "(none)",
    "loss_divergence": "loss factor per step",
}

#: Severe sizes: what a fault without a magnitude gets (the original simulator's sizes).
DEFAULT_MAGNITUDE = {
    "thermal_runaway": 1.2, "ecc_storm": 40.0, "xid79": 1.0, "straggler": 0.45, "memory_leak": 0.25,
    "nvlink_degradation": 25.0, "stalled_gpu": 1.0, "loss_divergence": 1.15,
}

#: Per kind: (barely visible, the issue's milder size, severe). The benchmark's targets hold at index 1 and up.
MAGNITUDES = {
    "thermal_runaway": (0.1, 0.3, 1.2),
    "ecc_storm": (0.5, 4.0, 40.0),
    "xid79": (1.0,),
    "straggler": (0.08, 0.2, 0.45),
    "memory_leak": (0.01, 0.05, 0.25),
    "nvlink_degradation": (0.5, 3.0, 25.0),
    "stalled_gpu": (1.0,),
    "loss_divergence": (1.003, 1.01, 1.15),
}
MILD_INDEX = {k: min(1, len(v) - 1) for k, v in MAGNITUDES.items()}

#: Which precursor an xid79 scenario shows before the fatal event (chosen per fault).
PRECURSORS = ("ecc_rate", "pcie_replay", "remap_pending", "link_downgrade", "nvlink_crc")


@dataclass(frozen=True)
class GpuModel:
    name: str
    sm_clock_mhz: float
    idle_clock_mhz: float
    power_limit_w: float
    idle_power_w: float
    fb_gib: float


MODELS = {
    "h100": GpuModel("H100", 1980.0, 345.0, 700.0, 90.0, 80.0),
    "a100": GpuModel("A100", 1410.0, 210.0, 400.0, 55.0, 80.0),
    "l40s": GpuModel("L40S", 2520.0, 210.0, 350.0, 35.0, 48.0),
}


@dataclass(frozen=True)
class SimProfile:
    """Noise, hardware and workload of a simulated cluster (all rates per node)."""

    name: str = "classic"
    util_sigma: float = 1.5
    clock_sigma: float = 5.0
    chip_spread: float = 0.01
    temp_sigma: float = 0.3
    power_sigma: float = 8.0
    models: tuple[str, ...] = ("h100",)
    #: Share of nodes serving inference (diurnal, per-GPU load; no job SDK).
    inference_share: float = 0.0
    #: Regimes are off in ``classic``: then training load follows the diurnal curve as it always did.
    regimes: bool = False
    #: Busy utilisation of a training job, drawn per job in this range.
    job_util: tuple[float, float] = (97.0, 97.0)
    loader_stalls_per_h: float = 0.0
    loader_stall_s: tuple[int, int] = (5, 60)
    checkpoint_every_s: int = 0
    checkpoint_s: tuple[int, int] = (20, 90)
    eval_every_s: int = 0
    eval_s: tuple[int, int] = (60, 300)
    eval_util: float = 0.6
    idle_gap_s: tuple[int, int] = (60, 600)
    #: Correctable-error background rates per GPU per second.
    sbe_per_s: float = 0.0005
    replay_per_s: float = 0.001
    #: Share of GPUs with a chronic, healthy, higher correctable-error rate (x ``chronic_factor``).
    chronic_share: float = 0.0
    chronic_factor: float = 20.0
    #: Emit PCIe link width/generation (the NVML collector does not read them yet).
    link_metrics: bool = False
    #: Ticks a GPU may lag its peers entering or leaving a phase (real GPUs are not in lockstep).
    phase_lag: int = 0


PROFILES = {
    "classic": SimProfile(),
    "tune": SimProfile(
        name="tune", util_sigma=2.5, clock_sigma=10.0, chip_spread=0.02, temp_sigma=0.35, power_sigma=10.0,
        models=("h100", "a100"), inference_share=0.25, regimes=True, job_util=(85.0, 98.0),
        loader_stalls_per_h=6.0, checkpoint_every_s=1500, eval_every_s=2400, idle_gap_s=(60, 600),
        chronic_share=0.05, link_metrics=True, phase_lag=1),
    "holdout": SimProfile(
        name="holdout", util_sigma=4.0, clock_sigma=15.0, chip_spread=0.03, temp_sigma=0.4, power_sigma=12.0,
        models=("h100", "a100", "l40s"), inference_share=0.35, regimes=True, job_util=(75.0, 99.0),
        loader_stalls_per_h=10.0, loader_stall_s=(3, 90), checkpoint_every_s=1100, checkpoint_s=(15, 120),
        eval_every_s=1900, eval_s=(40, 400), eval_util=0.45, idle_gap_s=(30, 900), sbe_per_s=0.001,
        replay_per_s=0.002, chronic_share=0.08, chronic_factor=30.0, link_metrics=True, phase_lag=2),
}
