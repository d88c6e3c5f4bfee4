"""Host metrics through psutil, and InfiniBand ports from a fixture /sys/class/infiniband tree."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from agents.collectors.host import HostCollector, HostConfig
from agents.collectors.infiniband import InfinibandCollector, InfinibandConfig
from schemas.metrics import MetricSample

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_host_collector_reports_cpu_memory_disk_network_and_load():
    c = HostCollector(HostConfig(mounts=["/", "/definitely/not/mounted"]))
    c.start()
    first = c.collect(time.time())
    time.sleep(0.2)
    samples = c.collect(time.time())
    names = {s["metric"] for s in samples}
    assert {"cpu_util_pct", "cpu_iowait_pct", "load1", "load5", "load15", "mem_total_bytes", "mem_available_bytes",
            "mem_used_pct", "swap_used_bytes", "disk_used_bytes", "disk_free_bytes", "disk_used_pct"} <= names
    assert "cpu_util_pct" in names and "cpu_util_pct" in {s["metric"] for s in first} | names
    assert all(s["gpu"] == -1 for s in samples)
    for s in samples:
        MetricSample.model_validate(s)
    disk = [s for s in samples if s["metric"] == "disk_used_pct"]
    assert [s["labels"]["mount"] for s in disk] == ["/"]  # the missing mount is skipped, not an error
    cpu = next(s for s in samples if s["metric"] == "cpu_util_pct")["value"]
    assert 0 <= cpu <= 100


def test_host_collector_keeps_only_the_named_nics():
    import psutil

    nic = next(iter(psutil.net_io_counters(pernic=True)))
    c = HostCollector(HostConfig(nics=[nic]))
    c.start()
    c.collect(time.time())
    samples = c.collect(time.time() + 1)
    assert {s["labels"]["nic"] for s in samples if "nic" in s.get("labels", {})} == {nic}


def test_infiniband_ports_state_rate_traffic_and_errors(tmp_path):
    root = tmp_path / "infiniband"
    shutil.copytree(FIXTURES / "sys_infiniband", root)
    c = InfinibandCollector(InfinibandConfig(sys_root=root))
    c.collect(100.0)
    counters = root / "mlx5_0" / "ports" / "1" / "counters"
    (counters / "port_rcv_data").write_text(str(1_000_000 + 250_000_000) + "\n")  # words of 4 bytes
    (counters / "symbol_error").write_text("5\n")
    samples = c.collect(102.0)
    for s in samples:
        MetricSample.model_validate(s)
    get = {(s["labels"]["device"], s["metric"]): s["value"] for s in samples}
    assert get[("mlx5_0", "ib_port_state")] == 4 and get[("mlx5_0", "ib_port_active")] == 1
    assert get[("mlx5_1", "ib_port_active")] == 0 and get[("mlx5_1", "ib_phys_state")] == 3
    assert get[("mlx5_0", "ib_rate_gbps")] == 400
    assert get[("mlx5_0", "ib_rx_bytes_s")] == 250_000_000 * 4 / 2
    assert get[("mlx5_0", "ib_tx_bytes_s")] == 0
    assert get[("mlx5_0", "ib_symbol_error_total")] == 5 and get[("mlx5_0", "ib_link_downed_total")] == 1
    assert get[("mlx5_1", "ib_port_rcv_errors_total")] == 7
    assert ("mlx5_1", "ib_symbol_error_total") not in get  # absent counter file: left out


def test_infiniband_absent_is_silent(tmp_path):
    assert InfinibandCollector(InfinibandConfig(sys_root=tmp_path / "none")).collect(1.0) == []
