"""NVML collector: every GPU's utilisation, memory, clocks, power, errors and processes.

It reads through ``pynvml`` (nvidia-ml-py), the same library nvidia-smi's
bindings use. A field a GPU does not support is left out and logged once (not
an error, and never asked again); a GPU that falls off the bus (XID 79, NVML
"GPU is lost") is reported once as a health event and then skipped, while the
other GPUs carry on; when it is found again (after a reset) that is an event too.

**Reads are scheduled by cost.** Cheap gauges are read every scrape, and the
counters NVML also serves as field values (ECC, PCIe replays, retired pages,
remapped rows, NVLink) come in one batched ``nvmlDeviceGetFieldValues`` call
per GPU. Costly or slowly changing groups (energy, PCIe throughput, ...) have
their own intervals (``group_intervals_s``). GPUs are read in parallel, one
thread each (:mod:`agents.collectors.gpu_reads`): a GPU whose reads hang is
reported as not answering without holding up the others, and again when it
answers.

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
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from agents.collectors.base import Collector, CollectorConfig, GpuIdentity, Sample
from agents.collectors.gpu_reads import ParallelReads
from agents.collectors.nvml_fields import (BATCHED_GROUPS, DEFAULT_GROUP_INTERVALS_S, FIELD_VALUES,
                                           NVLINK_THROUGHPUT, READERS, GpuLost, batched_group_rows, field_value)
from agents.collectors.nvml_processes import ProcessReads
from schemas.xid import normalize_pci_bus_id

log = logging.getLogger("gpuwatch.agent.nvml")
#: One thread for the inventory check's device count (a stalled call keeps it; the next check waits for it).
_COUNTS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nvml-count")

#: GPU i first reads its scheduled groups i times this many seconds after start.
_STAGGER_S = 1.0


class NvmlConfig(CollectorConfig):
    #: Per-process GPU memory and utilisation (also what attribution needs).
    processes: bool = True
    #: MIG instance memory, when MIG mode is on.
    mig: bool = True
    #: Field groups to skip, e.g. ["retired_pages"] on a fleet where the call is slow.
    skip: list[str] = Field(default_factory=list)
    #: Seconds between searches for GPUs that appeared or came back (after a reset or a lost GPU).
    rediscover_s: float = Field(default=30.0, gt=0)
    #: Seconds between reads of a field group, for the costly or slowly changing ones; a group not
    #: named is read every scrape, 0 reads it every scrape too. Defaults: nvml_fields.DEFAULT_GROUP_INTERVALS_S.
    group_intervals_s: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_GROUP_INTERVALS_S))
    #: How long a scrape waits for the GPUs' reads; a GPU still reading is left out of that scrape.
    read_budget_s: float = Field(default=0.5, gt=0, le=60)
    #: A GPU whose read has not returned after this long is reported as not answering.
    hang_s: float = Field(default=5.0, gt=0, le=3600)


@dataclass
class _Gpu:
    ident: GpuIdentity
    handle: Any
    unsupported: set[str] = field(default_factory=set)
    nvlinks: list[int] = field(default_factory=list)
    state: dict = field(default_factory=dict)
    lost: bool = False
    #: Field groups this GPU's driver would not serve as field values: read through their own calls.
    unbatched: set[str] = field(default_factory=set)
    #: When each scheduled group is next due (monotonic seconds).
    next_due: dict[str, float] = field(default_factory=dict)


def _text(v: Any) -> str:
    return v.decode(errors="replace") if isinstance(v, (bytes, bytearray)) else str(v)


def _finite(v: float) -> bool:
    return math.isfinite(v)


def real_gpu_count() -> int:
    """How many GPUs the real NVML sees here; 0 when there is no library, driver or GPU (the benchmarks
    then time the cost-faithful fake instead)."""
    try:
        nv = importlib.import_module("pynvml")
        nv.nvmlInit()
        try:
            return int(nv.nvmlDeviceGetCount())
        finally:
            nv.nvmlShutdown()
    except Exception:  # noqa: BLE001 - no library, no driver, no GPU: all mean "none"
        return 0


class NvmlCollector(ProcessReads, Collector):
    name = "nvml"
    config_model = NvmlConfig

    def __init__(self, config: NvmlConfig | None = None, context=None, nvml: Any = None) -> None:
        super().__init__(config, context)
        self._nv = nvml
        self._gpus: list[_Gpu] = []
        self._events: list[dict] = []
        self._logged: set[tuple] = set()
        self._last_discover = 0.0
        self._counts = {"reads": 0, "unsupported_fields": 0, "errors": 0, "gpus_lost": 0, "gpus_returned": 0,
                        "late_reads": 0, "gpus_not_answering": 0}
        self._field_ids: dict[str, int] = {}
        self._lost_uuids: set[str] = set()
        self._returned: list[GpuIdentity] = []
        self._intervals = {k: v for k, v in self.config.group_intervals_s.items() if v > 0}
        self._reads = ParallelReads(self.config.read_budget_s, self.config.hang_s)

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
        batched = [n for fields in BATCHED_GROUPS.values() for n, _ in fields]
        self._field_ids = {n: getattr(nv, n) for n in (*FIELD_VALUES, *NVLINK_THROUGHPUT, *batched) if hasattr(nv, n)}
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
            if uuid in self._lost_uuids:
                self._lost_uuids.discard(uuid)
                self._returned.append(ident)
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
        for ident in self._returned:
            self._counts["gpus_returned"] += 1
            log.warning("GPU %d (%s) is back: reading it again", ident.index, ident.uuid)
            self._health_event(time.time(), ident, "info", "none", f"GPU {ident.index} is back",
                               f"NVML finds GPU {ident.index} ({ident.uuid}, PCI {ident.pci_bus_id}) again after "
                               "it was lost; its samples resume.")
        self._returned.clear()

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
        self._reads.close()
        if self._nv is not None:
            try:
                self._nv.nvmlShutdown()
            except Exception:  # noqa: BLE001 - shutting down anyway
                pass

    # -- scrape ----------------------------------------------------------------------------
    def collect(self, now: float) -> list[Sample]:
        mono = time.monotonic()
        if mono - self._last_discover > self.config.rediscover_s and self._inventory_changed():
            self._discover()
        out: list[Sample] = []
        self.context.gpu_pids = {}
        jobs = {}
        for g in self._gpus:
            if not g.lost:
                due = self._due_groups(g, mono)
                jobs[g.ident.uuid] = (lambda g=g, due=due: self._read_gpu(g, now, due))
        by_uuid = {g.ident.uuid: g for g in self._gpus}
        r = self._reads.run(jobs)
        for uuid, waited in r.hung:
            self._not_answering(by_uuid[uuid], now, waited)
        for uuid in r.recovered:
            g = by_uuid[uuid]
            log.warning("GPU %d (%s) answers again", g.ident.index, uuid)
            self._health_event(now, g.ident, "info", "none", f"GPU {g.ident.index} answers again",
                               f"NVML reads of GPU {g.ident.index} ({uuid}) return again after hanging; "
                               "its samples resume.")
        self._counts["late_reads"] += len(r.late)
        for uuid, f in r.done.items():
            try:
                out.extend(f.result())
            except GpuLost as e:
                self._mark_lost(by_uuid[uuid], now, str(e))
        return out

    def _inventory_changed(self) -> bool:
        """A GPU was lost, or the driver counts a different number (one appeared); asks no GPU anything."""
        self._last_discover = time.monotonic()
        if self._reads.any_busy():
            return False  # a stalled driver would hang the scrape itself; look again next time
        if any(g.lost for g in self._gpus):
            return True
        pending = self.__dict__.get("_count_call")
        if pending is not None and not pending.done():
            return False  # the last count has not come back: the driver is stalled
        # Asked off the scrape's thread, with the read budget: a driver that stalled since the last scrape
        # shows no busy read yet, and a count asked of it here would hang the scrape behind it.
        call = self._count_call = _COUNTS.submit(self._nv.nvmlDeviceGetCount)
        try:
            return call.result(timeout=self.config.read_budget_s) != len(self._gpus)
        except FutureTimeout:
            log.warning("NVML did not say how many GPUs there are within %.1f s; looking again later",
                        self.config.read_budget_s)
            return False
        except self._nv.NVMLError:
            return False

    def _due_groups(self, g: _Gpu, mono: float) -> set[str]:
        """The scheduled groups due on this GPU now (and their next time set)."""
        due = set()
        for name, every in self._intervals.items():
            if name not in g.next_due:  # spread the GPUs' costly reads over the first scrapes, not all at once
                g.next_due[name] = mono + min(every, _STAGGER_S * g.ident.index)
            if mono >= g.next_due[name] - min(0.25, 0.05 * every):  # a tick waking a hair early still reads
                g.next_due[name] = mono + every
                due.add(name)
        return due

    def _wanted(self, key: str, due: set[str]) -> bool:
        return key not in self.config.skip and (key not in self._intervals or key in due)

    def _batched(self, g: _Gpu, key: str) -> bool:
        """Is this group read through the batched field-value call on this GPU?"""
        return (key in BATCHED_GROUPS and key not in g.unbatched and "field_values" not in g.unsupported
                and all(n in self._field_ids for n, _ in BATCHED_GROUPS[key]))

    def _not_answering(self, g: _Gpu, now: float, waited: float) -> None:
        self._counts["gpus_not_answering"] += 1
        log.error("GPU %d (%s): an NVML read has not returned for %.1fs; leaving it out until it answers",
                  g.ident.index, g.ident.uuid, waited)
        self._health_event(now, g.ident, "critical", "reset_gpu", f"GPU {g.ident.index} is not answering",
                           f"An NVML read of GPU {g.ident.index} ({g.ident.uuid}, PCI {g.ident.pci_bus_id}) has "
                           f"not returned for {waited:.1f}s: the driver or the GPU is stalled. The other GPUs are "
                           "still read; this one resumes when it answers.")

    def _health_event(self, now: float, ident: GpuIdentity, severity: str, action: str, title: str,
                      message: str) -> None:
        self._events.append({
            "v": 1, "kind": "event", "node": self.context.node, "ts": now, "source": "health", "code": 0,
            "gpu": ident.index, "pci_bus_id": ident.pci_bus_id, "severity": severity, "action": action,
            "title": title, "labels": {"uuid": ident.uuid}, "message": message,
        })

    def events(self, now: float) -> list[dict]:
        ev, self._events = self._events, []
        return ev

    def stats(self) -> dict[str, int]:
        return dict(self._counts)

    def _read_gpu(self, g: _Gpu, now: float, due: set[str]) -> list[Sample]:
        rows: list[tuple[str, float, str]] = []
        for key, reader in READERS.items():
            if key in g.unsupported or not self._wanted(key, due) or self._batched(g, key):
                continue
            got = self._call(g, key, reader, self._nv, g.handle, g.state)
            if got:
                rows.extend(got)
        rows.extend(self._field_values(g, now, due))
        idx, uuid = g.ident.index, g.ident.uuid
        out = [{"gpu": idx, "uuid": uuid, "metric": m, "value": v, "unit": u} for m, v, u in rows if _finite(v)]
        if self.config.processes and "processes" not in g.unsupported:
            out.extend(self._processes(g) or ())
        if self.config.mig and "mig" not in g.unsupported:
            out.extend(self._mig(g, due) or ())
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

    def _field_values(self, g: _Gpu, now: float, due: set[str]) -> list[tuple[str, float, str]]:
        nv = self._nv
        wanted = [n for n in FIELD_VALUES if n in self._field_ids and n not in g.unsupported]
        tput = [n for n in NVLINK_THROUGHPUT if n in self._field_ids and n not in g.unsupported] if g.nvlinks else []
        groups = [k for k in BATCHED_GROUPS if k not in g.unsupported and self._wanted(k, due) and self._batched(g, k)]
        ids: list[tuple[int, int]] = [(self._field_ids[n], 0) for n in wanted]
        ids += [(self._field_ids[n], link) for n in tput for link in g.nvlinks]
        n_plain = len(ids)
        ids += [(self._field_ids[n], 0) for k in groups for n, _ in BATCHED_GROUPS[k]]
        if not ids or "field_values" in g.unsupported:
            return []
        values = self._call(g, "field_values", nv.nvmlDeviceGetFieldValues, g.handle, ids)
        if values is None:
            return []
        rows: list[tuple[str, float, str]] = self._group_rows(g, groups, values[n_plain:])
        values = values[:n_plain]
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

    def _group_rows(self, g: _Gpu, groups: list[str], values: list) -> list[tuple[str, float, str]]:
        """Rows of the batched groups; a group the driver will not batch falls back to its own call."""
        nv = self._nv
        rows: list[tuple[str, float, str]] = []
        i = 0
        for key in groups:
            fields = BATCHED_GROUPS[key]
            chunk = values[i:i + len(fields)]
            i += len(fields)
            if any(fv.nvmlReturn == nv.NVML_ERROR_GPU_IS_LOST for fv in chunk):
                raise GpuLost("GPU is lost")
            if len(chunk) == len(fields) and all(fv.nvmlReturn == nv.NVML_SUCCESS for fv in chunk):
                rows += batched_group_rows(key, {m: field_value(nv, fv) for (_, m), fv in zip(fields, chunk)})
                continue
            g.unbatched.add(key)  # e.g. an older driver without these field ids: use the call from now on
            got = self._call(g, key, READERS[key], nv, g.handle, g.state)
            rows += got or []
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

    def _mark_lost(self, g: _Gpu, now: float, why: str) -> None:
        g.lost = True
        self._lost_uuids.add(g.ident.uuid)
        self._reads.forget(g.ident.uuid)
        self._counts["gpus_lost"] += 1
        self.context.gpus.pop(g.ident.index, None)
        self.context.gpu_pids.pop(g.ident.index, None)
        log.error("GPU %d (%s, %s) is lost: %s; no longer reading it", g.ident.index, g.ident.uuid,
                  g.ident.pci_bus_id, why)
        self._health_event(now, g.ident, "critical", "reboot", f"GPU {g.ident.index} is lost",
                           f"NVML reports '{why}' for GPU {g.ident.index} ({g.ident.uuid}, PCI {g.ident.pci_bus_id}); "
                           "it has most likely fallen off the bus (XID 79). Its samples stop until it is found again.")
