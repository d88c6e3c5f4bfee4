"""The NVML collection schedule: costly groups on their own intervals, counters batched, GPUs that hang or return."""

from __future__ import annotations

import threading
import time

import pynvml

from agents.collectors.base import NodeContext
from agents.collectors.nvml import NvmlCollector, NvmlConfig
from agents.collectors.nvml_fake import FakeGpu, FakeNvml
from schemas.events import NodeEvent


def _collector(nv: FakeNvml, **cfg) -> NvmlCollector:
    c = NvmlCollector(NvmlConfig(**cfg), NodeContext(node="n1"), nvml=nv)
    c.start()
    return c


def _metrics(samples, gpu=0) -> set[str]:
    return {s["metric"] for s in samples if s["gpu"] == gpu}


def _counting(nv: FakeNvml, name: str) -> list:
    calls = []
    real = getattr(nv, name)
    setattr(nv, name, lambda *a: (calls.append(a), real(*a))[1])
    return calls


def test_costly_groups_are_read_on_their_own_interval_staggered_across_gpus_and_cheap_ones_every_scrape():
    nv = FakeNvml(2)
    energy = _counting(nv, "nvmlDeviceGetTotalEnergyConsumption")
    pcie = _counting(nv, "nvmlDeviceGetPcieThroughput")
    c = _collector(nv, group_intervals_s={"energy": 3600, "pcie_throughput": 3600})
    first = c.collect(1.0)
    assert {"energy_j", "pcie_tx_bytes_s", "gpu_temp_c"} <= _metrics(first, 0)
    assert not {"energy_j", "pcie_tx_bytes_s"} & _metrics(first, 1)  # GPU 1 takes its turn a second later
    for t in range(2, 5):
        samples = c.collect(float(t))
        assert "gpu_temp_c" in _metrics(samples) and "power_w" in _metrics(samples, 1)
        assert not {"energy_j", "pcie_tx_bytes_s"} & (_metrics(samples, 0) | _metrics(samples, 1))
    time.sleep(1.05)
    later = c.collect(5.0)
    assert {"energy_j", "pcie_tx_bytes_s"} <= _metrics(later, 1) and "energy_j" not in _metrics(later, 0)
    assert len(energy) == 2 and len(pcie) == 4  # once per GPU (tx and rx), not once per scrape


def test_default_schedule_keeps_the_measured_costly_calls_off_most_scrapes():
    nv = FakeNvml(1)
    energy = _counting(nv, "nvmlDeviceGetTotalEnergyConsumption")
    pcie = _counting(nv, "nvmlDeviceGetPcieThroughput")
    c = _collector(nv)
    for t in range(5):
        c.collect(float(t))
    assert len(energy) == 1 and len(pcie) == 2



def test_mig_mode_is_read_on_its_own_interval_while_its_instances_are_read_every_scrape():
    """On the real H200 (driver 580) nvmlDeviceGetMigMode cost 468 us of CPU a call: the dearest read made every
    scrape, for a mode that changes only when an operator reconfigures the GPU."""
    from agents.collectors.nvml_fake import FakeMig

    g = FakeGpu(0, mig_mode=1, migs=[FakeMig("MIG-aaa", 1, 0, used=2**30)])
    nv = FakeNvml([g])
    mode = _counting(nv, "nvmlDeviceGetMigMode")
    c = _collector(nv, group_intervals_s={"mig_mode": 3600})
    for t in range(4):
        samples = [s for s in c.collect(float(t)) if s["gpu"] == 0]
        assert {"mig_enabled", "mig_instance_count", "mig_fb_used_bytes"} <= {s["metric"] for s in samples}
    assert len(mode) == 1
    c2 = _collector(nv, group_intervals_s={"mig_mode": 0.5})
    assert {s["metric"]: s["value"] for s in c2.collect(1.0) if s["gpu"] == 0}["mig_enabled"] == 1
    g.mig_mode = 0  # reconfigured: seen at the group's next read, not before
    assert {s["metric"]: s["value"] for s in c2.collect(1.5) if s["gpu"] == 0}["mig_enabled"] == 1
    time.sleep(0.55)
    v = {s["metric"]: s["value"] for s in c2.collect(2.0) if s["gpu"] == 0}
    assert v["mig_enabled"] == 0 and "mig_instance_count" not in v


def test_default_schedule_reads_mig_mode_off_most_scrapes():
    nv = FakeNvml(1)
    mode = _counting(nv, "nvmlDeviceGetMigMode")
    c = _collector(nv)
    for t in range(5):
        assert "mig_enabled" in _metrics(c.collect(float(t)))
    assert len(mode) == 1

def test_error_counters_come_in_one_batched_field_value_call_per_gpu():
    g = FakeGpu(0, ecc={(0, 0): 7, (1, 0): 2, (0, 1): 30, (1, 1): 4}, pcie_replay=11, retired_sbe=[1, 2],
                retired_dbe=[3], retired_pending=1, remapped=(5, 1, 1, 0))
    nv = FakeNvml([g])
    batched = _counting(nv, "nvmlDeviceGetFieldValues")
    single = [_counting(nv, n) for n in ("nvmlDeviceGetTotalEccErrors", "nvmlDeviceGetPcieReplayCounter",
                                          "nvmlDeviceGetRetiredPages", "nvmlDeviceGetRemappedRows")]
    c = _collector(nv, group_intervals_s={})
    v = {s["metric"]: s["value"] for s in c.collect(1.0) if s["gpu"] == 0}
    assert len(batched) == 1 and not any(single)
    assert (v["ecc_sbe_volatile_total"], v["ecc_dbe_volatile_total"], v["ecc_sbe_aggregate_total"],
            v["ecc_dbe_aggregate_total"]) == (7, 2, 30, 4)
    assert v["pcie_replay_total"] == 11
    assert (v["retired_pages_total"], v["retired_pages_sbe_total"], v["retired_pages_dbe_total"],
            v["retired_pages_pending"]) == (3, 2, 1, 1)
    assert (v["remapped_rows_correctable_total"], v["remapped_rows_uncorrectable_total"],
            v["remapped_rows_pending"], v["remapped_rows_failure"]) == (5, 1, 1, 0)


def test_a_driver_without_the_field_ids_falls_back_to_the_calls():
    g = FakeGpu(0, unsupported={pynvml.NVML_FI_DEV_ECC_SBE_VOL_TOTAL, pynvml.NVML_FI_DEV_PCIE_REPLAY_COUNTER})
    nv = FakeNvml([g])
    ecc = _counting(nv, "nvmlDeviceGetTotalEccErrors")
    c = _collector(nv, group_intervals_s={})
    for t in range(3):
        m = _metrics(c.collect(float(t)))
        assert {"ecc_sbe_volatile_total", "pcie_replay_total", "remapped_rows_pending"} <= m
    assert len(ecc) == 3 * 4  # four counters through the call, every scrape
    assert c.stats()["errors"] == 0


def test_a_hung_gpu_is_reported_without_holding_up_the_others_and_again_when_it_answers():
    nv = FakeNvml(4)
    c = _collector(nv, read_budget_s=0.2, hang_s=0.3)
    assert {s["gpu"] for s in c.collect(1.0)} == {0, 1, 2, 3}
    nv.gpus[2].hung = True
    assert {s["gpu"] for s in c.collect(2.0)} == {0, 1, 3}
    time.sleep(0.4)
    assert {s["gpu"] for s in c.collect(3.0)} == {0, 1, 3}
    events = c.events(3.0)
    assert len(events) == 1
    ev = NodeEvent.model_validate({**events[0], "ts": time.time()})
    assert ev.gpu == 2 and ev.source == "health" and ev.severity == "critical" and "not answering" in ev.title
    assert {s["gpu"] for s in c.collect(4.0)} == {0, 1, 3} and c.events(4.0) == []  # reported once
    nv.gpus[2].hung = False
    deadline = time.monotonic() + 5
    got: set = set()
    while 2 not in got and time.monotonic() < deadline:
        time.sleep(0.05)
        got = {s["gpu"] for s in c.collect(5.0)}
    assert got == {0, 1, 2, 3}
    back = c.events(5.0)
    assert len(back) == 1 and back[0]["gpu"] == 2 and "answers again" in back[0]["title"]
    assert c.stats()["gpus_not_answering"] == 1
    c.close()


def test_a_gpu_that_falls_off_the_bus_and_returns_gives_an_event_each_way():
    nv = FakeNvml(2)
    c = _collector(nv, rediscover_s=0.01)
    c.collect(1.0)
    nv.gpus[1].lost = True
    assert {s["gpu"] for s in c.collect(2.0)} == {0}
    lost = c.events(2.0)
    assert len(lost) == 1 and lost[0]["gpu"] == 1 and lost[0]["severity"] == "critical"
    nv.gpus[1].lost = False  # reset: the driver finds it again
    time.sleep(0.02)
    assert {s["gpu"] for s in c.collect(3.0)} == {0, 1}
    back = c.events(3.0)
    assert len(back) == 1 and back[0]["gpu"] == 1 and back[0]["title"] == "GPU 1 is back"
    NodeEvent.model_validate({**back[0], "ts": time.time()})
    assert c.stats()["gpus_returned"] == 1


def test_a_stalled_driver_never_hangs_the_scrape_through_the_inventory_check():
    nv = FakeNvml(2)
    c = _collector(nv, read_budget_s=0.2, hang_s=0.3, rediscover_s=0.01)
    c.collect(1.0)
    nv.gpus[1].hung = True
    real_count = nv.nvmlDeviceGetCount
    stalled = []

    def count():  # the driver's global lock is held: every call blocks
        stalled.append(1)
        while nv.gpus[1].hung:
            time.sleep(0.01)
        return real_count()

    nv.nvmlDeviceGetCount = count
    c._last_discover = float("-inf")  # the inventory check is due at the next scrape, before any read stalls
    done = threading.Event()
    samples: list = []
    t = threading.Thread(target=lambda: (samples.extend(c.collect(2.0)), time.sleep(0.05),
                                         samples.extend(c.collect(3.0)), done.set()), daemon=True)
    t.start()
    finished = done.wait(30)  # generous: a loaded machine; the two scrapes take well under a second idle
    nv.gpus[1].hung = False
    # Whether the count is asked depends on timing (before any read shows the stall, nothing can tell): what
    # must hold is that asking it never holds up the scrape. It hung it when the machine was loaded.
    assert len(stalled) <= 1, "the scrape asked the stalled driver again while its last count was out"
    assert finished, "the scrape hung behind the stalled GPU"  # it went on, reading GPU 0
    assert {s["gpu"] for s in samples} == {0}
    c.close()
