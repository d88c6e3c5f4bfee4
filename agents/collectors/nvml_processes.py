"""Per-process and MIG reads of the NVML collector: who uses each GPU, and each MIG instance's memory.

Kept apart from :mod:`agents.collectors.nvml` (the schedule and the GPU-level
fields) because these reads return one series per process or per instance,
labelled, rather than one value per GPU. The per-process pids are also what
attribution needs: they go to ``context.gpu_pids``.
"""

from __future__ import annotations

from typing import Any

from agents.collectors.base import Sample
from agents.collectors.nvml_fields import GpuLost


def _text(v: Any) -> str:
    return v.decode(errors="replace") if isinstance(v, (bytes, bytearray)) else str(v)


class ProcessReads:
    """Mixed into the NVML collector; uses its ``_nv``, ``_call``, ``_unsupported`` and ``context``."""

    def _processes(self, g: Any) -> list[Sample]:
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

    def _mig(self, g: Any, due: set[str]) -> list[Sample]:
        """MIG mode and, when it is on, each instance's memory.

        The mode is read when the ``mig_mode`` group is due (and on a GPU's first scrape) and kept in
        ``g.state`` between reads: on a real H200 the call cost 468 us of CPU, the dearest read of a
        scrape, for a setting that changes only when an operator reconfigures the GPU. The instances'
        memory is read every scrape while the mode is on.
        """
        nv, h = self._nv, g.handle
        if "mig_enabled" not in g.state or "mig_mode" in due:
            mode = self._call(g, "mig", nv.nvmlDeviceGetMigMode, h)
            if mode is None:
                return []
            g.state["mig_enabled"] = int(mode[0]) == getattr(nv, "NVML_DEVICE_MIG_ENABLE", 1)
        idx, uuid = g.ident.index, g.ident.uuid
        enabled = g.state["mig_enabled"]
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
