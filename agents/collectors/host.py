"""Host collector: CPU, memory, disk, network and load, through psutil.

Node-level samples (``gpu = -1``). Rates (CPU %, bytes/s) are computed from
counter deltas between scrapes, so the first scrape reports only gauges; a
counter that goes backwards (NIC reset, counter wrap) skips one rate.
Per-disk and per-NIC samples carry a ``mount``/``disk``/``nic`` label.
"""

from __future__ import annotations

import os

import psutil
from pydantic import Field

from agents.collectors.base import Collector, CollectorConfig, Sample


class HostConfig(CollectorConfig):
    #: Mount points whose usage is reported.
    mounts: list[str] = Field(default_factory=lambda: ["/"])
    #: Network interfaces to report; empty means every interface except loopback and virtual ones.
    nics: list[str] = Field(default_factory=list)
    #: Interface name prefixes skipped when ``nics`` is empty (container veths, bridges).
    skip_nic_prefixes: list[str] = Field(default_factory=lambda: ["lo", "veth", "docker", "br-", "cali", "flannel",
                                                                  "cni", "virbr", "tun", "kube"])


def _node(metric: str, value: float, unit: str, labels: dict | None = None) -> Sample:
    s = {"gpu": -1, "uuid": "", "metric": metric, "value": float(value), "unit": unit}
    if labels:
        s["labels"] = labels
    return s


class HostCollector(Collector):
    name = "host"
    config_model = HostConfig

    def __init__(self, config=None, context=None) -> None:
        super().__init__(config, context)
        self._prev: dict[str, tuple[float, float]] = {}
        self._prev_cpu = None

    def start(self) -> None:
        self._prev_cpu = psutil.cpu_times()

    def _rate(self, key: str, now: float, value: float) -> float | None:
        prev = self._prev.get(key)
        self._prev[key] = (now, value)
        if prev is None or now <= prev[0] or value < prev[1]:
            return None
        return (value - prev[1]) / (now - prev[0])

    def collect(self, now: float) -> list[Sample]:
        out: list[Sample] = []
        out += self._cpu()
        l1, l5, l15 = os.getloadavg()
        out += [_node("load1", l1, ""), _node("load5", l5, ""), _node("load15", l15, "")]
        vm = psutil.virtual_memory()
        out += [_node("mem_total_bytes", vm.total, "B"), _node("mem_available_bytes", vm.available, "B"),
                _node("mem_used_pct", vm.percent, "%")]
        sw = psutil.swap_memory()
        out.append(_node("swap_used_bytes", sw.used, "B"))
        for mount in self.config.mounts:
            try:
                du = psutil.disk_usage(mount)
            except OSError:
                continue
            lab = {"mount": mount}
            out += [_node("disk_used_bytes", du.used, "B", lab), _node("disk_free_bytes", du.free, "B", lab),
                    _node("disk_used_pct", du.percent, "%", lab)]
        io = psutil.disk_io_counters(perdisk=False)
        if io is not None:
            for metric, val in (("disk_read_bytes_s", io.read_bytes), ("disk_write_bytes_s", io.write_bytes)):
                r = self._rate(metric, now, val)
                if r is not None:
                    out.append(_node(metric, r, "B/s"))
        out += self._network(now)
        return out

    def _cpu(self) -> list[Sample]:
        cur = psutil.cpu_times()
        prev = self._prev_cpu
        if prev is None:
            self._prev_cpu = cur
            return []
        total = sum(cur) - sum(prev)
        if total <= 0:  # scrapes closer than the kernel's tick: wait for the next one
            return []
        self._prev_cpu = cur
        idle = (cur.idle - prev.idle) + (getattr(cur, "iowait", 0) - getattr(prev, "iowait", 0))
        iowait = getattr(cur, "iowait", 0) - getattr(prev, "iowait", 0)
        return [_node("cpu_util_pct", max(0.0, 100.0 * (1 - idle / total)), "%"),
                _node("cpu_iowait_pct", max(0.0, 100.0 * iowait / total), "%")]

    def _network(self, now: float) -> list[Sample]:
        out: list[Sample] = []
        wanted = set(self.config.nics)
        skip = tuple(self.config.skip_nic_prefixes)
        for nic, c in psutil.net_io_counters(pernic=True).items():
            if wanted and nic not in wanted:
                continue
            if not wanted and nic.startswith(skip):
                continue
            lab = {"nic": nic}
            for metric, val in (("net_rx_bytes_s", c.bytes_recv), ("net_tx_bytes_s", c.bytes_sent)):
                r = self._rate(f"{metric}/{nic}", now, val)
                if r is not None:
                    out.append(_node(metric, r, "B/s", lab))
            out += [_node("net_rx_errors_total", c.errin, "", lab), _node("net_tx_errors_total", c.errout, "", lab),
                    _node("net_rx_drops_total", c.dropin, "", lab), _node("net_tx_drops_total", c.dropout, "", lab)]
        return out
