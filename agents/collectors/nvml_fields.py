"""The NVML reads, one small function per field group, each returning (metric, value, unit) rows.

They cover dcgm-exporter's default signals plus the health counters it leaves
out (aggregate ECC, retired pages, remapped rows, NVLink error totals, decoded
throttle reasons). Each reader raises ``NVMLError`` as NVML does; the collector
decides what a failure means (unsupported, GPU lost, or a transient error).

Metric names match ``agents.simulator`` wherever the signal is the same, so
the pipeline's detectors run unchanged on simulated and real nodes.
"""

from __future__ import annotations

from typing import Any, Callable

Row = tuple[str, float, str]


class GpuLost(Exception):
    """NVML says this GPU is gone (fallen off the bus)."""


#: A reader takes (pynvml module, device handle, per-GPU state) and returns rows.
Reader = Callable[[Any, Any, dict], list[Row]]

#: Clock-event ("throttle") reason bits, decoded to names (nvmlClocksEventReason*).
THROTTLE_BITS: tuple[tuple[int, str], ...] = (
    (0x001, "idle"),
    (0x002, "app_clocks"),
    (0x004, "sw_power_cap"),
    (0x008, "hw_slowdown"),
    (0x010, "sync_boost"),
    (0x020, "sw_thermal"),
    (0x040, "hw_thermal"),
    (0x080, "hw_power_brake"),
    (0x100, "display_clocks"),
)


def decode_throttle(mask: int) -> list[str]:
    """Names of the reasons set in a clock-event bitmask.

    >>> decode_throttle(0x24)
    ['sw_power_cap', 'sw_thermal']
    """
    return [name for bit, name in THROTTLE_BITS if mask & bit]


def _utilization(nv, h, st) -> list[Row]:
    u = nv.nvmlDeviceGetUtilizationRates(h)
    return [("gpu_util_pct", float(u.gpu), "%"), ("mem_util_pct", float(u.memory), "%")]


def _encoder(nv, h, st) -> list[Row]:
    return [("enc_util_pct", float(nv.nvmlDeviceGetEncoderUtilization(h)[0]), "%")]


def _decoder(nv, h, st) -> list[Row]:
    return [("dec_util_pct", float(nv.nvmlDeviceGetDecoderUtilization(h)[0]), "%")]


def _memory(nv, h, st) -> list[Row]:
    if not st.get("memory_v1"):
        try:
            m = nv.nvmlDeviceGetMemoryInfo(h, version=nv.nvmlMemory_v2)
            return [("fb_used_bytes", float(m.used), "B"), ("fb_free_bytes", float(m.free), "B"),
                    ("fb_reserved_bytes", float(m.reserved), "B"), ("fb_total_bytes", float(m.total), "B")]
        except nv.NVMLError as e:  # old driver: v1 only, no "reserved"
            if e.value not in (nv.NVML_ERROR_NOT_SUPPORTED, nv.NVML_ERROR_FUNCTION_NOT_FOUND,
                               nv.NVML_ERROR_ARGUMENT_VERSION_MISMATCH):
                raise
            st["memory_v1"] = True
    m = nv.nvmlDeviceGetMemoryInfo(h)
    return [("fb_used_bytes", float(m.used), "B"), ("fb_free_bytes", float(m.free), "B"),
            ("fb_total_bytes", float(m.total), "B")]


def _sm_clock(nv, h, st) -> list[Row]:
    return [("sm_clock_mhz", float(nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM)), "MHz")]


def _mem_clock(nv, h, st) -> list[Row]:
    return [("mem_clock_mhz", float(nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_MEM)), "MHz")]


def _gpu_temp(nv, h, st) -> list[Row]:
    return [("gpu_temp_c", float(nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)), "C")]


def _power(nv, h, st) -> list[Row]:
    return [("power_w", nv.nvmlDeviceGetPowerUsage(h) / 1000.0, "W")]


def _power_limit(nv, h, st) -> list[Row]:
    return [("power_limit_w", nv.nvmlDeviceGetEnforcedPowerLimit(h) / 1000.0, "W")]


def _energy(nv, h, st) -> list[Row]:
    return [("energy_j", nv.nvmlDeviceGetTotalEnergyConsumption(h) / 1000.0, "J")]


def _pstate(nv, h, st) -> list[Row]:
    return [("pstate", float(nv.nvmlDeviceGetPerformanceState(h)), "")]


def _fan(nv, h, st) -> list[Row]:
    return [("fan_speed_pct", float(nv.nvmlDeviceGetFanSpeed(h)), "%")]


def _pcie_replay(nv, h, st) -> list[Row]:
    return [("pcie_replay_total", float(nv.nvmlDeviceGetPcieReplayCounter(h)), "")]


def _pcie_throughput(nv, h, st) -> list[Row]:
    # NVML reports KB/s averaged over a 20 ms window.
    tx = nv.nvmlDeviceGetPcieThroughput(h, nv.NVML_PCIE_UTIL_TX_BYTES) * 1024.0
    rx = nv.nvmlDeviceGetPcieThroughput(h, nv.NVML_PCIE_UTIL_RX_BYTES) * 1024.0
    return [("pcie_tx_bytes_s", tx, "B/s"), ("pcie_rx_bytes_s", rx, "B/s")]


def _ecc(nv, h, st) -> list[Row]:
    get = nv.nvmlDeviceGetTotalEccErrors
    c, u = nv.NVML_MEMORY_ERROR_TYPE_CORRECTED, nv.NVML_MEMORY_ERROR_TYPE_UNCORRECTED
    vol, agg = nv.NVML_VOLATILE_ECC, nv.NVML_AGGREGATE_ECC
    return [("ecc_sbe_volatile_total", float(get(h, c, vol)), ""), ("ecc_dbe_volatile_total", float(get(h, u, vol)), ""),
            ("ecc_sbe_aggregate_total", float(get(h, c, agg)), ""),
            ("ecc_dbe_aggregate_total", float(get(h, u, agg)), "")]


def _retired_pages(nv, h, st) -> list[Row]:
    sbe = len(nv.nvmlDeviceGetRetiredPages(h, nv.NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS))
    dbe = len(nv.nvmlDeviceGetRetiredPages(h, nv.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR))
    pending = nv.nvmlDeviceGetRetiredPagesPendingStatus(h)
    return [("retired_pages_total", float(sbe + dbe), ""), ("retired_pages_sbe_total", float(sbe), ""),
            ("retired_pages_dbe_total", float(dbe), ""), ("retired_pages_pending", float(bool(pending)), "")]


def _remapped_rows(nv, h, st) -> list[Row]:
    corr, unc, pending, failure = nv.nvmlDeviceGetRemappedRows(h)
    return [("remapped_rows_correctable_total", float(corr), ""),
            ("remapped_rows_uncorrectable_total", float(unc), ""),
            ("remapped_rows_pending", float(bool(pending)), ""), ("remapped_rows_failure", float(bool(failure)), "")]


def _throttle(nv, h, st) -> list[Row]:
    fn = getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None) or nv.nvmlDeviceGetCurrentClocksThrottleReasons
    mask = int(fn(h))
    rows = [(f"throttle_{name}", 1.0 if mask & bit else 0.0, "") for bit, name in THROTTLE_BITS]
    rows.append(("throttle_thermal", 1.0 if mask & 0x060 else 0.0, ""))  # sw or hw thermal slowdown
    rows.append(("throttle_power", 1.0 if mask & 0x084 else 0.0, ""))    # power cap or power brake
    return rows


#: Field groups read per GPU per scrape, by name (the name is what "unsupported" is logged under).
READERS: dict[str, Reader] = {
    "utilization": _utilization, "encoder": _encoder, "decoder": _decoder, "memory": _memory,
    "sm_clock": _sm_clock, "mem_clock": _mem_clock, "gpu_temp": _gpu_temp, "power": _power,
    "power_limit": _power_limit, "energy": _energy, "pstate": _pstate, "fan": _fan,
    "pcie_replay": _pcie_replay, "pcie_throughput": _pcie_throughput, "ecc": _ecc,
    "retired_pages": _retired_pages, "remapped_rows": _remapped_rows, "throttle": _throttle,
}

#: Counters and gauges read through nvmlDeviceGetFieldValues: field id name -> (metric, unit, scale).
FIELD_VALUES: dict[str, tuple[str, str]] = {
    "NVML_FI_DEV_MEMORY_TEMP": ("mem_temp_c", "C"),
    "NVML_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL": ("nvlink_crc_flit_errors_total", ""),
    "NVML_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL": ("nvlink_crc_data_errors_total", ""),
    "NVML_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL": ("nvlink_replay_errors_total", ""),
    "NVML_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL": ("nvlink_recovery_errors_total", ""),
}
#: Cumulative per-link NVLink data counters in KiB, turned into bytes/s between scrapes.
NVLINK_THROUGHPUT = {"NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX": "nvlink_tx_bytes_s",
                     "NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX": "nvlink_rx_bytes_s"}


def field_value(nv, fv) -> float:
    """The number inside an ``nvmlFieldValue_t``, whatever its declared type."""
    t = fv.valueType
    v = fv.value
    if t == nv.NVML_VALUE_TYPE_DOUBLE:
        return float(v.dVal)
    if t == nv.NVML_VALUE_TYPE_UNSIGNED_INT:
        return float(v.uiVal)
    if t == nv.NVML_VALUE_TYPE_UNSIGNED_LONG:
        return float(v.ulVal)
    if t == nv.NVML_VALUE_TYPE_SIGNED_LONG_LONG:
        return float(v.sllVal)
    if t == nv.NVML_VALUE_TYPE_SIGNED_INT:
        return float(v.siVal)
    return float(v.ullVal)


#: Reader groups whose values NVML also serves as field values: read in the GPU's one batched
#: ``nvmlDeviceGetFieldValues`` call instead of their own calls, on drivers where every field of the
#: group answers (otherwise the group falls back to its reader). Field id name -> metric.
BATCHED_GROUPS: dict[str, tuple[tuple[str, str], ...]] = {
    "pcie_replay": (("NVML_FI_DEV_PCIE_REPLAY_COUNTER", "pcie_replay_total"),),
    "ecc": (("NVML_FI_DEV_ECC_SBE_VOL_TOTAL", "ecc_sbe_volatile_total"),
            ("NVML_FI_DEV_ECC_DBE_VOL_TOTAL", "ecc_dbe_volatile_total"),
            ("NVML_FI_DEV_ECC_SBE_AGG_TOTAL", "ecc_sbe_aggregate_total"),
            ("NVML_FI_DEV_ECC_DBE_AGG_TOTAL", "ecc_dbe_aggregate_total")),
    "retired_pages": (("NVML_FI_DEV_RETIRED_SBE", "retired_pages_sbe_total"),
                      ("NVML_FI_DEV_RETIRED_DBE", "retired_pages_dbe_total"),
                      ("NVML_FI_DEV_RETIRED_PENDING", "retired_pages_pending")),
    "remapped_rows": (("NVML_FI_DEV_REMAPPED_COR", "remapped_rows_correctable_total"),
                      ("NVML_FI_DEV_REMAPPED_UNC", "remapped_rows_uncorrectable_total"),
                      ("NVML_FI_DEV_REMAPPED_PENDING", "remapped_rows_pending"),
                      ("NVML_FI_DEV_REMAPPED_FAILURE", "remapped_rows_failure")),
}


def batched_group_rows(group: str, values: dict[str, float]) -> list[Row]:
    """The rows a batched group gives, the same as its reader's (flags as 0/1, derived totals added).

    >>> batched_group_rows("retired_pages", {"retired_pages_sbe_total": 2, "retired_pages_dbe_total": 1,
    ...                                      "retired_pages_pending": 4})[-1]
    ('retired_pages_total', 3.0, '')
    """
    rows = [(m, float(bool(v)) if m.endswith(("_pending", "_failure")) else float(v), "")
            for m, v in values.items()]
    if group == "retired_pages":
        rows.append(("retired_pages_total", float(values["retired_pages_sbe_total"] +
                                                  values["retired_pages_dbe_total"]), ""))
    return rows


#: Seconds between reads of the groups that are costly or change slowly (measured on an H200, driver
#: 580: energy 2.6-3.9 ms of CPU, PCIe throughput ~21 ms of wall time per direction as NVML samples a
#: window, MIG mode 468 us, the replay counter 150 us; the reads made every scrape 4-150 us). Groups not
#: named are read every scrape. ``inventory`` is the search for GPUs that appeared or came back;
#: ``mig_mode`` is the MIG setting (its instances are read every scrape while it is on).
DEFAULT_GROUP_INTERVALS_S: dict[str, float] = {
    "energy": 60.0, "pcie_throughput": 30.0, "pcie_replay": 10.0, "ecc": 10.0, "retired_pages": 60.0,
    "remapped_rows": 60.0, "power_limit": 60.0, "inventory": 30.0, "mig_mode": 30.0,
}
