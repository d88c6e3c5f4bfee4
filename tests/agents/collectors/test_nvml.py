"""The NVML collector against a fake at the pynvml boundary: every field, unsupported fields, a lost GPU."""

from __future__ import annotations

import logging
import time

import pynvml
import pytest

from agents.collectors.base import NodeContext
from agents.collectors.nvml import NvmlCollector, NvmlConfig
from agents.collectors.nvml_fake import FakeGpu, FakeMig, FakeNvml
from agents.collectors.nvml_fields import decode_throttle
from agents.simulator import SimulatedCluster
from schemas.events import NodeEvent
from schemas.metrics import MetricSample

#: Every metric one healthy, fully featured GPU must produce (second scrape: rates exist).
EXPECTED = {
    "gpu_util_pct", "mem_util_pct", "enc_util_pct", "dec_util_pct",
    "fb_used_bytes", "fb_free_bytes", "fb_reserved_bytes", "fb_total_bytes",
    "sm_clock_mhz", "mem_clock_mhz", "gpu_temp_c", "mem_temp_c", "power_w", "power_limit_w", "energy_j",
    "pstate", "fan_speed_pct", "pcie_replay_total", "pcie_tx_bytes_s", "pcie_rx_bytes_s",
    "nvlink_tx_bytes_s", "nvlink_rx_bytes_s", "nvlink_crc_errors_total", "nvlink_crc_flit_errors_total",
    "nvlink_crc_data_errors_total", "nvlink_replay_errors_total", "nvlink_recovery_errors_total",
    "ecc_sbe_volatile_total", "ecc_dbe_volatile_total", "ecc_sbe_aggregate_total", "ecc_dbe_aggregate_total",
    "retired_pages_total", "retired_pages_sbe_total", "retired_pages_dbe_total", "retired_pages_pending",
    "remapped_rows_correctable_total", "remapped_rows_uncorrectable_total", "remapped_rows_pending",
    "remapped_rows_failure",
    "throttle_thermal", "throttle_power", "throttle_idle", "throttle_app_clocks", "throttle_sw_power_cap",
    "throttle_hw_slowdown", "throttle_sync_boost", "throttle_sw_thermal", "throttle_hw_thermal",
    "throttle_hw_power_brake", "throttle_display_clocks",
    "gpu_process_count", "process_fb_used_bytes", "process_sm_util_pct", "process_mem_util_pct",
    "mig_enabled", "mig_instance_count", "mig_fb_used_bytes", "mig_fb_free_bytes", "mig_fb_total_bytes",
}


def _collector(nv: FakeNvml, **cfg) -> tuple[NvmlCollector, NodeContext]:
    ctx = NodeContext(node="n1")
    cfg.setdefault("group_intervals_s", {})  # every group every scrape; the schedule has its own tests
    c = NvmlCollector(NvmlConfig(**cfg), ctx, nvml=nv)
    c.start()
    return c, ctx


def _by_metric(samples, gpu=0):
    out = {}
    for s in samples:
        if s["gpu"] == gpu:
            out.setdefault(s["metric"], []).append(s)
    return out


def _two_scrapes(c: NvmlCollector, nv: FakeNvml):
    c.collect(1000.0)
    for g in nv.gpus:
        g.advance(1.0)
    return c.collect(1001.0)


def test_every_field_is_read_with_the_right_value_and_unit():
    g = FakeGpu(0, temp=71, power_mw=512_345, throttle_mask=0x44, processes=[(4242, 30 * 2**30, 88, 41)],
                mig_mode=1, migs=[FakeMig("MIG-aaa", 1, 0, used=3 * 2**30), FakeMig("MIG-bbb", 2, 0)])
    nv = FakeNvml([g])
    c, _ = _collector(nv)
    samples = _two_scrapes(c, nv)
    m = _by_metric(samples)
    assert EXPECTED <= set(m), f"missing: {sorted(EXPECTED - set(m))}"
    for s in samples:  # every sample is a valid wire sample
        MetricSample.model_validate(s)
    v = {k: ss[0]["value"] for k, ss in m.items()}
    assert v["gpu_temp_c"] == 71.0 and m["gpu_temp_c"][0]["unit"] == "C"
    assert v["power_w"] == pytest.approx(512.345)
    assert v["power_limit_w"] == 700.0
    assert v["energy_j"] == pytest.approx((1_000_000 + 512_345) / 1000)
    assert v["fb_used_bytes"] == 60 * 2**30 and v["fb_reserved_bytes"] == 512 * 2**20
    assert v["fb_free_bytes"] == 80 * 2**30 - 60 * 2**30 - 512 * 2**20
    assert v["pcie_tx_bytes_s"] == 2_000_000 * 1024
    assert v["ecc_sbe_volatile_total"] == 5 and v["ecc_dbe_aggregate_total"] == 1
    assert v["retired_pages_total"] == 1 and v["remapped_rows_correctable_total"] == 1
    assert v["nvlink_crc_errors_total"] == 4  # flit 3 + data 1
    # 40 GB/s of NVLink traffic advanced between the two scrapes, 1 s apart.
    assert v["nvlink_tx_bytes_s"] == pytest.approx(40e9, rel=1e-3)
    # 0x44 = sw power cap + hw thermal slowdown
    assert v["throttle_thermal"] == 1 and v["throttle_power"] == 1 and v["throttle_hw_thermal"] == 1
    assert v["throttle_sw_thermal"] == 0 and v["throttle_idle"] == 0
    proc = m["process_fb_used_bytes"][0]
    assert proc["labels"] == {"pid": "4242"} and proc["value"] == 30 * 2**30
    assert m["process_sm_util_pct"][0]["value"] == 88
    assert v["mig_instance_count"] == 2
    assert {s["labels"]["mig_uuid"] for s in m["mig_fb_used_bytes"]} == {"MIG-aaa", "MIG-bbb"}


def test_metric_names_match_the_simulator_for_shared_signals():
    cluster = SimulatedCluster(nodes=1, gpus=1, seed=1, start_ts=time.time())
    batches, _ = cluster.tick()
    sim_gpu_metrics = {s["metric"] for s in batches[0]["samples"] if s["gpu"] >= 0}
    nv = FakeNvml(1)
    c, _ = _collector(nv)
    real = {s["metric"] for s in _two_scrapes(c, nv)}
    assert sim_gpu_metrics <= real, f"simulator metrics the NVML collector does not produce: {sim_gpu_metrics - real}"


def test_unsupported_fields_are_left_out_and_logged_once(caplog):
    g = FakeGpu(0, unsupported={"nvmlDeviceGetFanSpeed", "nvmlDeviceGetRetiredPages", "nvmlDeviceGetMemoryInfo_v2",
                                pynvml.NVML_FI_DEV_MEMORY_TEMP, "nvmlDeviceGetMigMode",
                                "nvmlDeviceGetEncoderUtilization"})
    nv = FakeNvml([g, FakeGpu(1)])
    c, _ = _collector(nv)
    with caplog.at_level(logging.INFO, logger="gpuwatch.agent.nvml"):
        for i in range(3):
            samples = c.collect(1000.0 + i)
    m0, m1 = _by_metric(samples, 0), _by_metric(samples, 1)
    for gone in ("fan_speed_pct", "retired_pages_total", "mem_temp_c", "mig_enabled", "enc_util_pct",
                 "fb_reserved_bytes"):
        assert gone not in m0 and gone in m1
    assert "fb_used_bytes" in m0  # memory fell back to the v1 call
    notes = [r.getMessage() for r in caplog.records if "does not support" in r.getMessage()]
    assert len(notes) == 5, notes  # fan, retired pages, memory temp, MIG, encoder: once each, not per scrape
    assert all(r.levelno == logging.INFO for r in caplog.records if "does not support" in r.getMessage())
    assert c.stats()["errors"] == 0
    # An unsupported call is not asked again (it would cost a driver call every second).
    calls = nv.calls
    c.collect(2000.0)
    per_scrape = nv.calls - calls
    c2, _ = _collector(FakeNvml([FakeGpu(0), FakeGpu(1)]))
    c2.collect(1.0)
    n = c2._nv.calls
    c2.collect(2.0)
    assert per_scrape < c2._nv.calls - n


def test_transient_error_is_counted_and_retried_next_scrape():
    g = FakeGpu(0)
    nv = FakeNvml([g])
    c, _ = _collector(nv)
    real = nv.nvmlDeviceGetTemperature
    nv.nvmlDeviceGetTemperature = lambda h, s: (_ for _ in ()).throw(pynvml.NVMLError(pynvml.NVML_ERROR_TIMEOUT))
    assert "gpu_temp_c" not in _by_metric(c.collect(1.0))
    nv.nvmlDeviceGetTemperature = real
    assert "gpu_temp_c" in _by_metric(c.collect(2.0))
    assert c.stats()["errors"] == 1


def test_gpu_that_falls_off_the_bus_is_reported_once_and_the_others_carry_on():
    nv = FakeNvml(4)
    c, ctx = _collector(nv)
    assert len(c.collect(1.0)) > 0 and set(ctx.gpus) == {0, 1, 2, 3}
    nv.gpus[2].lost = True  # XID 79: every call on it now says "GPU is lost"
    samples = c.collect(2.0)
    assert {s["gpu"] for s in samples} == {0, 1, 3}
    events = c.events(2.0)
    assert len(events) == 1
    ev = NodeEvent.model_validate({**events[0], "ts": time.time()})
    assert ev.gpu == 2 and ev.severity == "critical" and ev.action == "reboot" and ev.source == "health"
    assert set(ctx.gpus) == {0, 1, 3}  # the heartbeat's inventory drops it
    assert ctx.gpu_by_pci(nv.gpus[2].bus_id.lower()[4:-2]) is not None  # XIDs can still name it
    for t in range(3, 6):
        assert {s["gpu"] for s in c.collect(float(t))} == {0, 1, 3}
    assert c.events(6.0) == []  # reported once
    assert c.stats()["gpus_lost"] == 1


def test_gpu_lost_in_the_middle_of_process_or_mig_reads_is_survived():
    g = FakeGpu(0, processes=[(1, 2**30, 1, 1)], unsupported={"nvmlDeviceGetComputeRunningProcesses"})
    nv = FakeNvml([g, FakeGpu(1)])
    c, _ = _collector(nv)
    c.collect(1.0)
    g.unsupported.clear()
    g.lost = True
    assert {s["gpu"] for s in c.collect(2.0)} == {1}


def test_nvml_that_cannot_start_says_what_to_do():
    nv = FakeNvml(1)
    nv.nvmlInit = lambda: (_ for _ in ()).throw(pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND))
    c = NvmlCollector(NvmlConfig(), NodeContext(node="n"), nvml=nv)
    with pytest.raises(RuntimeError, match="collectors.nvml.enabled: false"):
        c.start()


def test_no_nan_or_inf_ever_leaves_the_collector():
    g = FakeGpu(0)
    g.fields[pynvml.NVML_FI_DEV_MEMORY_TEMP] = float("nan")
    nv = FakeNvml([g])
    c, _ = _collector(nv)
    samples = c.collect(1.0)
    assert "mem_temp_c" not in _by_metric(samples)
    assert all(s["value"] == s["value"] and abs(s["value"]) != float("inf") for s in samples)


def test_throttle_decoding():
    assert decode_throttle(0) == []
    assert decode_throttle(0x1 | 0x80 | 0x100) == ["idle", "hw_power_brake", "display_clocks"]
