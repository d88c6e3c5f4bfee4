"""A stand-in for the ``pynvml`` module, for tests, the benchmark and laptops without GPUs.

It answers the same calls with the same shapes and the same ``NVMLError``
classes (taken from the real nvidia-ml-py, which imports without a driver), so
the collector under test is the production code path down to the pynvml
boundary. Per GPU it can refuse any call as unsupported, lose a GPU (every
call then raises "GPU is lost", as after XID 79) or hang it (every call blocks
until ``hung`` is cleared, as a stalled driver does).

With ``costs`` it also *costs* what the real library does: each call burns
its CPU time and then waits out the rest of its wall time, so the overhead
benchmark means something without a GPU. :data:`H200_COSTS` holds the costs
measured on an H200 (driver 580).

>>> nv = FakeNvml(gpus=1)
>>> nv.nvmlInit(); h = nv.nvmlDeviceGetHandleByIndex(0)
>>> nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)
45
>>> nv.gpus[0].lost = True
>>> nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)
Traceback (most recent call last):
...
pynvml.NVMLError_GpuIsLost: GPU is lost
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pynvml as _real

#: Every counter the fake serves through nvmlDeviceGetFieldValues, by field id.
_FIELD_DEFAULTS = {
    _real.NVML_FI_DEV_MEMORY_TEMP: 52,
    _real.NVML_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL: 3,
    _real.NVML_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL: 1,
    _real.NVML_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL: 0,
    _real.NVML_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL: 0,
}


#: (CPU seconds, wall seconds) per call, measured with real NVML on an H200 (driver 580.159.04): each call
#: timed where the agent's collector makes it, 20 scrapes at 1 Hz on an idle GPU, by
#: ``bench/nvml_call_costs.py`` (2026-12-01). The PCIe throughput call
#: samples a window, so its wall time is mostly waiting. The energy figure is the first measurement's
#: 3.9 ms (the second read 2.6 ms). Calls not named cost 5 us, within the 4-20 us the rest measured.
H200_COSTS: dict[str, tuple[float, float]] = {
    "nvmlDeviceGetTotalEnergyConsumption": (3.9e-3, 3.9e-3),
    "nvmlDeviceGetPcieThroughput": (0.5e-3, 20.6e-3),
    "nvmlDeviceGetPcieReplayCounter": (150e-6, 150e-6),
    "nvmlDeviceGetMigMode": (468e-6, 470e-6),
    "nvmlDeviceGetFanSpeed": (364e-6, 364e-6),
    "nvmlDeviceGetUtilizationRates": (150e-6, 147e-6),
    "nvmlDeviceGetFieldValues": (129e-6, 129e-6),
    "nvmlDeviceGetMemoryInfo": (74e-6, 74e-6),
    "nvmlDeviceGetPowerUsage": (45e-6, 54e-6),
    "nvmlDeviceGetComputeRunningProcesses": (35e-6, 35e-6),
    "nvmlDeviceGetRetiredPages": (22e-6, 22e-6),
    "nvmlDeviceGetCurrentClocksEventReasons": (20e-6, 20e-6),
    "nvmlDeviceGetTemperature": (16e-6, 16e-6),
    "nvmlDeviceGetGraphicsRunningProcesses": (15e-6, 15e-6),
    "nvmlDeviceGetClockInfo": (12e-6, 12e-6),
    "nvmlDeviceGetEncoderUtilization": (12e-6, 12e-6),
    "*": (5e-6, 5e-6),
}


_BURN = bytes(16384)


def _spend(cpu_s: float, wall_s: float) -> None:
    """Burn ``cpu_s`` of this thread's CPU, then sleep until ``wall_s`` has passed.

    Long burns hash a buffer, which releases the GIL as the real library's C
    code does, so fake GPUs read in parallel contend as real ones would.
    """
    t0 = time.perf_counter()
    end = time.thread_time() + cpu_s
    while time.thread_time() < end:
        if cpu_s > 1e-4:
            hashlib.sha256(_BURN)
    left = wall_s - (time.perf_counter() - t0)
    if left > 0:
        time.sleep(left)


@dataclass
class FakeMig:
    uuid: str
    gpu_instance: int
    compute_instance: int
    total: int = 10 * 2**30
    used: int = 2 * 2**30
    lost_with: "FakeGpu | None" = None


@dataclass
class FakeGpu:
    """One simulated GPU. Tests set fields directly to shape a scenario."""

    index: int
    uuid: str = ""
    name: str = "NVIDIA H100 80GB HBM3"
    bus_id: str = ""
    util_gpu: int = 97
    util_mem: int = 61
    enc: int = 0
    dec: int = 0
    fb_total: int = 80 * 2**30
    fb_used: int = 60 * 2**30
    fb_reserved: int = 512 * 2**20
    sm_clock: int = 1980
    mem_clock: int = 2619
    temp: int = 45
    power_mw: int = 650_000
    power_limit_mw: int = 700_000
    energy_mj: int = 1_000_000
    pstate: int = 0
    fan: int = 40
    pcie_replay: int = 2
    pcie_tx_kbs: int = 2_000_000
    pcie_rx_kbs: int = 3_000_000
    ecc: dict = field(default_factory=lambda: {(0, 0): 5, (1, 0): 0, (0, 1): 12, (1, 1): 1})
    retired_sbe: list = field(default_factory=lambda: [0x1000])
    retired_dbe: list = field(default_factory=list)
    retired_pending: int = 0
    remapped: tuple = (1, 0, 0, 0)
    throttle_mask: int = 0
    fields: dict = field(default_factory=lambda: dict(_FIELD_DEFAULTS))
    nvlinks: int = 4
    nvlink_kib: float = 0.0
    processes: list = field(default_factory=list)  # [(pid, used_bytes or None, sm_util, mem_util)]
    mig_mode: int = 0
    migs: list = field(default_factory=list)
    #: pynvml function names (or field ids) this GPU answers with NOT_SUPPORTED.
    unsupported: set = field(default_factory=set)
    lost: bool = False
    #: While True every call on this GPU blocks (a stalled driver); clearing it lets them return.
    hung: bool = False

    def __post_init__(self) -> None:
        self.uuid = self.uuid or f"GPU-fake0000-0000-0000-0000-{self.index:012x}"
        self.bus_id = self.bus_id or f"00000000:{0x17 + self.index * 0x10:02X}:00.0"

    def advance(self, seconds: float = 1.0) -> None:
        """Move counters on as ``seconds`` of work would."""
        self.energy_mj += int(self.power_mw * seconds)
        self.nvlink_kib += 40e9 / 1024 * seconds


class FakeNvml:
    """Module-like fake of pynvml over a list of :class:`FakeGpu`."""

    def __init__(self, gpus: int | list[FakeGpu] = 8, driver: str = "550.90.07",
                 costs: dict[str, tuple[float, float]] | None = None) -> None:
        for k in dir(_real):  # constants and NVMLError classes, exactly as pynvml defines them
            if k.startswith(("NVML_", "NVMLError", "nvmlClocks", "nvmlMemory_v")):
                setattr(self, k, getattr(_real, k))
        self.gpus: list[FakeGpu] = [FakeGpu(i) for i in range(gpus)] if isinstance(gpus, int) else gpus
        self.driver = driver
        self.initialized = False
        self.calls = 0
        self.costs = costs

    def _err(self, code: int) -> Exception:
        return _real.NVMLError(code)

    def _check(self, h: Any, fn: str) -> FakeGpu:
        self.calls += 1
        gpu = h.lost_with if isinstance(h, FakeMig) else h
        if self.costs is not None:
            _spend(*self.costs.get(fn, self.costs["*"]))
        deadline = time.monotonic() + 60
        while gpu is not None and gpu.hung and time.monotonic() < deadline:
            time.sleep(0.01)
        if gpu is not None and gpu.lost:
            raise self._err(_real.NVML_ERROR_GPU_IS_LOST)
        if gpu is not None and fn in gpu.unsupported:
            raise self._err(_real.NVML_ERROR_NOT_SUPPORTED)
        return h

    # -- system ----------------------------------------------------------------------------
    def nvmlInit(self) -> None:
        self.initialized = True

    def nvmlShutdown(self) -> None:
        self.initialized = False

    def nvmlSystemGetDriverVersion(self) -> str:
        return self.driver

    def nvmlDeviceGetCount(self) -> int:
        if not self.initialized:
            raise self._err(_real.NVML_ERROR_UNINITIALIZED)
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> FakeGpu:
        if i >= len(self.gpus):
            raise self._err(_real.NVML_ERROR_INVALID_ARGUMENT)
        return self._check(self.gpus[i], "nvmlDeviceGetHandleByIndex")

    # -- identity --------------------------------------------------------------------------
    def nvmlDeviceGetUUID(self, h):
        return self._check(h, "nvmlDeviceGetUUID").uuid

    def nvmlDeviceGetName(self, h):
        return self._check(h, "nvmlDeviceGetName").name

    def nvmlDeviceGetPciInfo(self, h):
        return SimpleNamespace(busId=self._check(h, "nvmlDeviceGetPciInfo").bus_id)

    # -- gauges ----------------------------------------------------------------------------
    def nvmlDeviceGetMemoryInfo(self, h, version=None):
        g = self._check(h, "nvmlDeviceGetMemoryInfo")
        if isinstance(g, FakeMig):
            return SimpleNamespace(total=g.total, used=g.used, free=g.total - g.used)
        if version is not None:
            self._check(h, "nvmlDeviceGetMemoryInfo_v2")
            free = g.fb_total - g.fb_used - g.fb_reserved
            return SimpleNamespace(total=g.fb_total, used=g.fb_used, free=free, reserved=g.fb_reserved)
        return SimpleNamespace(total=g.fb_total, used=g.fb_used, free=g.fb_total - g.fb_used)

    def nvmlDeviceGetUtilizationRates(self, h):
        g = self._check(h, "nvmlDeviceGetUtilizationRates")
        return SimpleNamespace(gpu=g.util_gpu, memory=g.util_mem)

    def nvmlDeviceGetEncoderUtilization(self, h):
        return [self._check(h, "nvmlDeviceGetEncoderUtilization").enc, 167000]

    def nvmlDeviceGetDecoderUtilization(self, h):
        return [self._check(h, "nvmlDeviceGetDecoderUtilization").dec, 167000]

    def nvmlDeviceGetClockInfo(self, h, kind):
        g = self._check(h, "nvmlDeviceGetClockInfo")
        return g.sm_clock if kind == _real.NVML_CLOCK_SM else g.mem_clock

    def nvmlDeviceGetTemperature(self, h, sensor):
        return self._check(h, "nvmlDeviceGetTemperature").temp

    def nvmlDeviceGetPowerUsage(self, h):
        return self._check(h, "nvmlDeviceGetPowerUsage").power_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, h):
        return self._check(h, "nvmlDeviceGetEnforcedPowerLimit").power_limit_mw

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        return self._check(h, "nvmlDeviceGetTotalEnergyConsumption").energy_mj

    def nvmlDeviceGetPerformanceState(self, h):
        return self._check(h, "nvmlDeviceGetPerformanceState").pstate

    def nvmlDeviceGetFanSpeed(self, h):
        return self._check(h, "nvmlDeviceGetFanSpeed").fan

    def nvmlDeviceGetPcieReplayCounter(self, h):
        return self._check(h, "nvmlDeviceGetPcieReplayCounter").pcie_replay

    def nvmlDeviceGetPcieThroughput(self, h, counter):
        g = self._check(h, "nvmlDeviceGetPcieThroughput")
        return g.pcie_tx_kbs if counter == _real.NVML_PCIE_UTIL_TX_BYTES else g.pcie_rx_kbs

    # -- health counters -------------------------------------------------------------------
    def nvmlDeviceGetTotalEccErrors(self, h, error_type, counter_type):
        return self._check(h, "nvmlDeviceGetTotalEccErrors").ecc[(error_type, counter_type)]

    def nvmlDeviceGetRetiredPages(self, h, cause):
        g = self._check(h, "nvmlDeviceGetRetiredPages")
        return list(g.retired_dbe if cause == _real.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR else g.retired_sbe)

    def nvmlDeviceGetRetiredPagesPendingStatus(self, h):
        return self._check(h, "nvmlDeviceGetRetiredPagesPendingStatus").retired_pending

    def nvmlDeviceGetRemappedRows(self, h):
        return tuple(self._check(h, "nvmlDeviceGetRemappedRows").remapped)

    def nvmlDeviceGetCurrentClocksEventReasons(self, h):
        return self._check(h, "nvmlDeviceGetCurrentClocksEventReasons").throttle_mask

    def nvmlDeviceGetNvLinkState(self, h, link):
        g = self._check(h, "nvmlDeviceGetNvLinkState")
        if link >= 18:
            raise self._err(_real.NVML_ERROR_INVALID_ARGUMENT)
        return 1 if link < g.nvlinks else 0

    def _counter_fields(self, g: FakeGpu) -> dict[int, tuple[str, int]]:
        """Field ids that mirror a call's counters, with the call whose support they share."""
        r = _real
        return {
            r.NVML_FI_DEV_PCIE_REPLAY_COUNTER: ("nvmlDeviceGetPcieReplayCounter", g.pcie_replay),
            r.NVML_FI_DEV_ECC_SBE_VOL_TOTAL: ("nvmlDeviceGetTotalEccErrors", g.ecc[(0, 0)]),
            r.NVML_FI_DEV_ECC_DBE_VOL_TOTAL: ("nvmlDeviceGetTotalEccErrors", g.ecc[(1, 0)]),
            r.NVML_FI_DEV_ECC_SBE_AGG_TOTAL: ("nvmlDeviceGetTotalEccErrors", g.ecc[(0, 1)]),
            r.NVML_FI_DEV_ECC_DBE_AGG_TOTAL: ("nvmlDeviceGetTotalEccErrors", g.ecc[(1, 1)]),
            r.NVML_FI_DEV_RETIRED_SBE: ("nvmlDeviceGetRetiredPages", len(g.retired_sbe)),
            r.NVML_FI_DEV_RETIRED_DBE: ("nvmlDeviceGetRetiredPages", len(g.retired_dbe)),
            r.NVML_FI_DEV_RETIRED_PENDING: ("nvmlDeviceGetRetiredPages", g.retired_pending),
            r.NVML_FI_DEV_REMAPPED_COR: ("nvmlDeviceGetRemappedRows", g.remapped[0]),
            r.NVML_FI_DEV_REMAPPED_UNC: ("nvmlDeviceGetRemappedRows", g.remapped[1]),
            r.NVML_FI_DEV_REMAPPED_PENDING: ("nvmlDeviceGetRemappedRows", g.remapped[2]),
            r.NVML_FI_DEV_REMAPPED_FAILURE: ("nvmlDeviceGetRemappedRows", g.remapped[3]),
        }

    def nvmlDeviceGetFieldValues(self, h, ids):
        g = self._check(h, "nvmlDeviceGetFieldValues")
        counters = self._counter_fields(g)
        out = []
        for fid, scope in ids:
            ret, val = _real.NVML_SUCCESS, 0
            if fid in g.unsupported or (fid in counters and counters[fid][0] in g.unsupported):
                ret = _real.NVML_ERROR_NOT_SUPPORTED
            elif fid in counters:
                val = counters[fid][1]
            elif fid in (_real.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX, _real.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX):
                val = int(g.nvlink_kib / max(1, g.nvlinks))
            elif fid in g.fields:
                val = g.fields[fid]
            else:
                ret = _real.NVML_ERROR_NOT_SUPPORTED
            out.append(SimpleNamespace(fieldId=fid, scopeId=scope, nvmlReturn=ret,
                                       valueType=_real.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG,
                                       value=SimpleNamespace(ullVal=val)))
        return out

    # -- processes and MIG -----------------------------------------------------------------
    def nvmlDeviceGetComputeRunningProcesses(self, h):
        g = self._check(h, "nvmlDeviceGetComputeRunningProcesses")
        return [SimpleNamespace(pid=p[0], usedGpuMemory=p[1]) for p in g.processes]

    def nvmlDeviceGetGraphicsRunningProcesses(self, h):
        self._check(h, "nvmlDeviceGetGraphicsRunningProcesses")
        return []

    def nvmlDeviceGetProcessUtilization(self, h, last_seen):
        g = self._check(h, "nvmlDeviceGetProcessUtilization")
        if not g.processes:
            raise self._err(_real.NVML_ERROR_NOT_FOUND)
        return [SimpleNamespace(pid=p[0], smUtil=p[2], memUtil=p[3], encUtil=0, decUtil=0, timeStamp=last_seen + 1)
                for p in g.processes]

    def nvmlDeviceGetMigMode(self, h):
        g = self._check(h, "nvmlDeviceGetMigMode")
        return [g.mig_mode, g.mig_mode]

    def nvmlDeviceGetMaxMigDeviceCount(self, h):
        return 7 if self._check(h, "nvmlDeviceGetMaxMigDeviceCount").mig_mode else 0

    def nvmlDeviceGetMigDeviceHandleByIndex(self, h, i):
        g = self._check(h, "nvmlDeviceGetMigDeviceHandleByIndex")
        if i >= len(g.migs):
            raise self._err(_real.NVML_ERROR_NOT_FOUND)
        g.migs[i].lost_with = g
        return g.migs[i]

    def nvmlDeviceGetGpuInstanceId(self, mh):
        return self._check(mh, "nvmlDeviceGetGpuInstanceId").gpu_instance

    def nvmlDeviceGetComputeInstanceId(self, mh):
        return self._check(mh, "nvmlDeviceGetComputeInstanceId").compute_instance
