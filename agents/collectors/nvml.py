"""NVML collector: every GPU's utilisation, memory, clocks, power, errors and processes.

It reads through ``pynvml`` (nvidia-ml-py), the same library nvidia-smi's
bindings use. A field a GPU does not support is left out and logged once (not
an error, and never asked again); a GPU that falls off the bus (XID 79, NVML
"GPU is lost") is reported once as a health event and then skipped, while the
other GPUs carry on.

>>> from agents.collectors.nvml_fake import FakeNvml
>>> c = NvmlCollector(NvmlConfig(), nvml=FakeNvml(gpus=2))
>>> c.start()
>>> temps = [s for s in c.collect(1.0) if s["metric"] == "gpu_temp_c"]
>>> [s["gpu"] for s in temps]
[0, 1]
"""

from __future__ import annotations

import importlib
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from agents.collectors.base import Collector, CollectorConfig, GpuIdentity, Sample
from agents.collectors.nvml_fields import FIELD_VALUES, NVLINK_THROUGHPUT, READERS, field_value
from schemas.xid import normalize_pci_bus_id

log = logging.getLogger("gpuwatch.agent.nvml")


class NvmlConfig(CollectorConfig):
    #: Per-process GPU memory and utilisation (also what attribution needs).
    processes: bool = True
    #: MIG instance memory, when MIG mode is on.
    mig: bool = True
    #: Field groups to skip, e.g. ["retired_pages"] on a fleet where the call is slow.
    skip: list[str] = Field(default_factory=list)
    #: Seconds between attempts to find GPUs again after one was lost or NVML failed.
    rediscover_s: float = Field(default=300.0, gt=0)


class GpuLost(Exception):
    """NVML says this GPU is gone (fallen off the bus)."""


@dataclass
class _Gpu:
    ident: GpuIdentity
    handle: Any
    unsupported: set[str] = field(default_factory=set)
    nvlinks: list[int] = field(default_factory=list)
    state: dict = field(default_factory=dict)
    lost: bool = False


def _text(v: Any) -> str:
    return v.decode(errors="replace") if isinstance(v, (bytes, bytearray)) else str(v)


def _finite(v: float) -> bool:
    return math.isfinite(v)


class NvmlCollector(Collector):
    name = "nvml"
    config_model = NvmlConfig

    def __init__(self, config: NvmlConfig | None = None, context=None, nvml: Any = None) -> None:
        super().__init__(config, context)
        self._nv = nvml
        self._gpus: list[_Gpu] = []
        self._events: list[dict] = []
        self._logged: set[tuple] = set()
        self._last_discover = 0.0
        self._counts = {"reads": 0, "unsupported_fields": 0, "errors": 0, "gpus_lost": 0}
        self._field_ids: dict[str, int] = {}

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        if self._nv is None:
            self._nv = importlib.import_module("pynvml")
        nv = self._nv
        try:
            nv.nvmlInit()
        except nv.NVMLError as e:
            raise RuntimeError(f"NVML could not start ({e}): is the NVIDIA driver installed and, in a container, "
                               "is the GPU exposed? On a host without GPUs set collectors.nvml.enabled: false") from None
        self._field_ids = {n: getattr(nv, n) for n in (*FIELD_VALUES, *NVLINK_THROUGHPUT) if hasattr(nv, n)}
        self._discover()
        log.info("NVML: %d GPU(s), driver %s", len(self._gpus), self._driver_version())

    def _driver_version(self) -> str:
        try:
            return _text(self._nv.nvmlSystemGetDriverVersion())
        except Exception:  # noqa: BLE001 - informational only
            return "unknown"

    def _discover(self) -> None:
        nv = self._nv
        self._last_discover = time.monotonic()
        known = {g.ident.uuid: g for g in self._gpus if not g.lost}
        gpus: list[_Gpu] = []
        for i in range(nv.nvmlDeviceGetCount()):
            try:
                h = nv.nvmlDeviceGetHandleByIndex(i)
                uuid = _text(nv.nvmlDeviceGetUUID(h))
            except nv.NVMLError as e:
                self._once(("discover", i, e.value), "GPU %d could not be opened: %s", i, e)
                continue
            if uuid in known:
                gpus.append(known[uuid])
                continue
            ident = GpuIdentity(index=i, uuid=uuid)
            for attr, fn in (("name", lambda: _text(nv.nvmlDeviceGetName(h))),
                             ("pci_bus_id", lambda: normalize_pci_bus_id(_text(nv.nvmlDeviceGetPciInfo(h).busId))),
                             ("memory_total_bytes", lambda: int(nv.nvmlDeviceGetMemoryInfo(h).total))):
                try:
                    setattr(ident, attr, fn())
                except nv.NVMLError:
                    pass
            gpus.append(_Gpu(ident, h, nvlinks=self._active_nvlinks(h)))
        self._gpus = gpus
        self.context.set_gpus([g.ident for g in gpus])

    def _active_nvlinks(self, h: Any) -> list[int]:
        nv = self._nv
        links = []
        for link in range(getattr(nv, "NVML_NVLINK_MAX_LINKS", 18)):
            try:
                if nv.nvmlDeviceGetNvLinkState(h, link) == getattr(nv, "NVML_FEATURE_ENABLED", 1):
                    links.append(link)
            except nv.NVMLError:
                break
            except AttributeError:
                break
        return links

    def close(self) -> None:
        if self._nv is not None:
            try:
                self._nv.nvmlShutdown()
            except Exception:  # noqa: BLE001 - shutting down anyway
                pass

    # -- scrape ----------------------------------------------------------------------------
    def collect(self, now: float) -> list[Sample]:
        if any(g.lost for g in self._gpus) and time.monotonic() - self._last_discover > self.config.rediscover_s:
            self._discover()
        out: list[Sample] = []
        self.context.gpu_pids = {}
        for g in self._gpus:
            if g.lost:
                continue
            try:
                out.extend(self._read_gpu(g, now))
            except GpuLost as e:
                self._mark_lost(g, now, str(e))
        return out

    def events(self, now: float) -> list[dict]:
        ev, self._events = self._events, []
        return ev

    def stats(self) -> dict[str, int]:
        return dict(self._counts)

    def _read_gpu(self, g: _Gpu, now: float) -> list[Sample]:
        rows: list[tuple[str, float, str]] = []
        skip = self.config.skip
        for key, reader in READERS.items():
            if key in g.unsupported or key in skip:
                continue
            got = self._call(g, key, reader, self._nv, g.handle, g.state)
            if got:
                rows.extend(got)
        rows.extend(self._field_values(g, now))
        idx, uuid = g.ident.index, g.ident.uuid
        out = [{"gpu": idx, "uuid": uuid, "metric": m, "value": v, "unit": u} for m, v, u in rows if _finite(v)]
        if self.config.processes and "processes" not in g.unsupported:
            out.extend(self._processes(g) or ())
        if self.config.mig and "mig" not in g.unsupported:
            out.extend(self._mig(g) or ())
        return out

    def _call(self, g: _Gpu, key: str, fn, *args):
        """Run one NVML read; None when it failed for a reason that is not the GPU's loss."""
        nv = self._nv
        self._counts["reads"] += 1
        try:
            return fn(*args)
        except nv.NVMLError as e:
            if e.value == nv.NVML_ERROR_GPU_IS_LOST:
                raise GpuLost(str(e)) from None
            if e.value in (nv.NVML_ERROR_NOT_SUPPORTED, nv.NVML_ERROR_FUNCTION_NOT_FOUND):
                self._unsupported(g, key, str(e))
                return None
            self._counts["errors"] += 1
            self._once(("error", g.ident.index, key, e.value), "GPU %d: reading %s failed: %s (will retry)",
                       g.ident.index, key, e)
            return None
        except AttributeError:  # an older nvidia-ml-py without this call
            self._unsupported(g, key, "not in this pynvml")
            return None

    def _unsupported(self, g: _Gpu, key: str, why: str) -> None:
        g.unsupported.add(key)
        self._counts["unsupported_fields"] += 1
        log.info("GPU %d (%s) does not support %s (%s); leaving it out", g.ident.index, g.ident.name, key, why)

    def _once(self, key: tuple, msg: str, *args) -> None:
        if key not in self._logged:
            self._logged.add(key)
            log.warning(msg, *args)

    def _field_values(self, g: _Gpu, now: float) -> list[tuple[str, float, str]]:
        nv = self._nv
        wanted = [n for n in FIELD_VALUES if n in self._field_ids and n not in g.unsupported]
        tput = [n for n in NVLINK_THROUGHPUT if n in self._field_ids and n not in g.unsupported] if g.nvlinks else []
        ids: list[tuple[int, int]] = [(self._field_ids[n], 0) for n in wanted]
        ids += [(self._field_ids[n], link) for n in tput for link in g.nvlinks]
        if not ids or "field_values" in g.unsupported:
            return []
        values = self._call(g, "field_values", nv.nvmlDeviceGetFieldValues, g.handle, ids)
        if values is None:
            return []
        rows: list[tuple[str, float, str]] = []
        for n, fv in zip(wanted, values[:len(wanted)]):
            if fv.nvmlReturn != nv.NVML_SUCCESS:
                self._field_failed(g, n, fv.nvmlReturn)
                continue
            metric, unit = FIELD_VALUES[n]
            rows.append((metric, field_value(nv, fv), unit))
        crc = [v for m, v, _ in rows if m in ("nvlink_crc_flit_errors_total", "nvlink_crc_data_errors_total")]
        if crc:
            rows.append(("nvlink_crc_errors_total", float(sum(crc)), ""))
        rest = values[len(wanted):]
        for j, n in enumerate(tput):
            chunk = rest[j * len(g.nvlinks):(j + 1) * len(g.nvlinks)]
            bad = next((fv.nvmlReturn for fv in chunk if fv.nvmlReturn != nv.NVML_SUCCESS), None)
            if bad is not None:
                self._field_failed(g, n, bad)
                continue
            kib = sum(field_value(nv, fv) for fv in chunk)
            prev = g.state.get(n)
            g.state[n] = (now, kib)
            if prev is not None and now > prev[0] and kib >= prev[1]:
                rows.append((NVLINK_THROUGHPUT[n], (kib - prev[1]) * 1024.0 / (now - prev[0]), "B/s"))
        return rows

    def _field_failed(self, g: _Gpu, name: str, ret: int) -> None:
        nv = self._nv
        if ret == nv.NVML_ERROR_GPU_IS_LOST:
            raise GpuLost("GPU is lost")
        if ret in (nv.NVML_ERROR_NOT_SUPPORTED, nv.NVML_ERROR_INVALID_ARGUMENT):
            self._unsupported(g, name, f"field value returned {ret}")
        else:
            self._counts["errors"] += 1
            self._once(("field", g.ident.index, name, ret), "GPU %d: field %s returned NVML error %d",
                       g.ident.index, name, ret)

    def _processes(self, g: _Gpu) -> list[Sample]:
        nv, h = self._nv, g.handle
        mem: dict[int, float | None] = {}
        procs = self._call(g, "processes", nv.nvmlDeviceGetComputeRunningProcesses, h)
        if procs is None:
            return []
        graphics = self._call(g, "graphics_processes", nv.nvmlDeviceGetGraphicsRunningProcesses, h) \
            if "graphics_processes" not in g.unsupported else None
        for p in list(procs) + list(graphics or ()):
            used = getattr(p, "usedGpuMemory", None)
            mem[int(p.pid)] = float(used) if used is not None else mem.get(int(p.pid))
        util: dict[int, Any] = {}
        if mem and "process_utilization" not in g.unsupported:
            try:
                samples = nv.nvmlDeviceGetProcessUtilization(h, g.state.get("proc_ts", 0))
            except nv.NVMLError as e:
                if e.value == nv.NVML_ERROR_GPU_IS_LOST:
                    raise GpuLost(str(e)) from None
                if e.value in (nv.NVML_ERROR_NOT_SUPPORTED, nv.NVML_ERROR_FUNCTION_NOT_FOUND):
                    self._unsupported(g, "process_utilization", str(e))
                samples = []  # NOT_FOUND: no new samples since the last scrape
            for s in samples:
                util[int(s.pid)] = s
                g.state["proc_ts"] = max(g.state.get("proc_ts", 0), int(s.timeStamp))
        self.context.gpu_pids[g.ident.index] = sorted(mem)
        idx, uuid = g.ident.index, g.ident.uuid
        out: list[Sample] = [{"gpu": idx, "uuid": uuid, "metric": "gpu_process_count", "value": float(len(mem)),
                              "unit": ""}]
        for pid in sorted(mem):
            labels = {"pid": str(pid)}
            if mem[pid] is not None:
                out.append({"gpu": idx, "uuid": uuid, "metric": "process_fb_used_bytes", "value": mem[pid],
                            "unit": "B", "labels": labels})
            if pid in util:
                out.append({"gpu": idx, "uuid": uuid, "metric": "process_sm_util_pct",
                            "value": float(util[pid].smUtil), "unit": "%", "labels": labels})
                out.append({"gpu": idx, "uuid": uuid, "metric": "process_mem_util_pct",
                            "value": float(util[pid].memUtil), "unit": "%", "labels": labels})
        return out

    def _mig(self, g: _Gpu) -> list[Sample]:
        nv, h = self._nv, g.handle
        mode = self._call(g, "mig", nv.nvmlDeviceGetMigMode, h)
        if mode is None:
            return []
        idx, uuid = g.ident.index, g.ident.uuid
        enabled = int(mode[0]) == getattr(nv, "NVML_DEVICE_MIG_ENABLE", 1)
        out: list[Sample] = [{"gpu": idx, "uuid": uuid, "metric": "mig_enabled", "value": float(enabled), "unit": ""}]
        if not enabled:
            return out
        count = 0
        for i in range(nv.nvmlDeviceGetMaxMigDeviceCount(h)):
            try:
                mh = nv.nvmlDeviceGetMigDeviceHandleByIndex(h, i)
                labels = {"mig_uuid": _text(nv.nvmlDeviceGetUUID(mh)),
                          "gpu_instance": str(nv.nvmlDeviceGetGpuInstanceId(mh)),
                          "compute_instance": str(nv.nvmlDeviceGetComputeInstanceId(mh))}
                m = nv.nvmlDeviceGetMemoryInfo(mh)
            except nv.NVMLError as e:
                if e.value == nv.NVML_ERROR_GPU_IS_LOST:
                    raise GpuLost(str(e)) from None
                continue  # NOT_FOUND: an empty MIG slot
            count += 1
            out += [{"gpu": idx, "uuid": uuid, "metric": metric, "value": float(v), "unit": "B", "labels": labels}
                    for metric, v in (("mig_fb_used_bytes", m.used), ("mig_fb_free_bytes", m.free),
                                      ("mig_fb_total_bytes", m.total))]
        out.append({"gpu": idx, "uuid": uuid, "metric": "mig_instance_count", "value": float(count), "unit": ""})
        return out

    def _mark_lost(self, g: _Gpu, now: float, why: str) -> None:
        g.lost = True
        self._counts["gpus_lost"] += 1
        self.context.gpus.pop(g.ident.index, None)
        self.context.gpu_pids.pop(g.ident.index, None)
        log.error("GPU %d (%s, %s) is lost: %s; no longer reading it", g.ident.index, g.ident.uuid,
                  g.ident.pci_bus_id, why)
        self._events.append({
            "v": 1, "kind": "event", "node": self.context.node, "ts": now, "source": "health", "code": 0,
            "gpu": g.ident.index, "pci_bus_id": g.ident.pci_bus_id, "severity": "critical", "action": "reboot",
            "title": f"GPU {g.ident.index} is lost", "labels": {"uuid": g.ident.uuid},
            "message": f"NVML reports '{why}' for GPU {g.ident.index} ({g.ident.uuid}, PCI {g.ident.pci_bus_id}); "
                       "it has most likely fallen off the bus (XID 79). Its samples stop until it is found again.",
        })
