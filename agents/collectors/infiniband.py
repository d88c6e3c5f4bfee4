"""InfiniBand collector: port state, rate, traffic and error counters from ``/sys/class/infiniband``.

On a host without InfiniBand the directory is absent and the collector
reports nothing (healthy, not an error). Samples are node-level with
``device`` and ``port`` labels. ``port_xmit_data``/``port_rcv_data`` count
4-byte words, so traffic is reported as bytes/s from their deltas.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import Field

from agents.collectors.base import Collector, CollectorConfig, Sample

log = logging.getLogger("gpuwatch.agent.infiniband")

#: Error counters worth alerting on, from ports/<n>/counters/.
ERROR_COUNTERS = (
    "symbol_error", "link_error_recovery", "link_downed", "port_rcv_errors", "port_rcv_remote_physical_errors",
    "port_rcv_switch_relay_errors", "port_xmit_discards", "port_xmit_constraint_errors",
    "port_rcv_constraint_errors", "local_link_integrity_errors", "excessive_buffer_overrun_errors",
    "VL15_dropped", "port_xmit_wait",
)


class InfinibandConfig(CollectorConfig):
    sys_root: Path = Path("/sys/class/infiniband")
    #: Devices to report (e.g. ["mlx5_0"]); empty means all.
    devices: list[str] = Field(default_factory=list)


def _read(p: Path) -> str | None:
    try:
        return p.read_text().strip()
    except OSError:
        return None


def _leading_number(text: str | None) -> float | None:
    """'4: ACTIVE' -> 4.0; '200 Gb/sec (4X HDR)' -> 200.0."""
    if not text:
        return None
    head = text.split(":", 1)[0].split()[0]
    try:
        return float(head)
    except ValueError:
        return None


class InfinibandCollector(Collector):
    name = "infiniband"
    config_model = InfinibandConfig

    def __init__(self, config=None, context=None) -> None:
        super().__init__(config, context)
        self._prev: dict[str, tuple[float, float]] = {}

    def _ports(self) -> list[tuple[str, str, Path]]:
        root = self.config.sys_root
        if not root.is_dir():
            return []
        out = []
        for dev in sorted(root.iterdir()):
            if self.config.devices and dev.name not in self.config.devices:
                continue
            ports = dev / "ports"
            if ports.is_dir():
                out += [(dev.name, p.name, p) for p in sorted(ports.iterdir())]
        return out

    def collect(self, now: float) -> list[Sample]:
        out: list[Sample] = []
        for dev, port, path in self._ports():
            labels = {"device": dev, "port": port}

            def add(metric: str, value: float | None, unit: str = "") -> None:
                if value is not None:
                    out.append({"gpu": -1, "uuid": "", "metric": metric, "value": float(value), "unit": unit,
                                "labels": labels})

            state = _leading_number(_read(path / "state"))
            add("ib_port_state", state)
            add("ib_port_active", None if state is None else float(state == 4))
            add("ib_phys_state", _leading_number(_read(path / "phys_state")))
            add("ib_rate_gbps", _leading_number(_read(path / "rate")), "Gb/s")
            counters = path / "counters"
            for name, metric in (("port_rcv_data", "ib_rx_bytes_s"), ("port_xmit_data", "ib_tx_bytes_s")):
                words = _leading_number(_read(counters / name))
                if words is None:
                    continue
                key = f"{dev}/{port}/{name}"
                prev = self._prev.get(key)
                self._prev[key] = (now, words)
                if prev is not None and now > prev[0] and words >= prev[1]:
                    add(metric, (words - prev[1]) * 4 / (now - prev[0]), "B/s")
            for name in ERROR_COUNTERS:
                add(f"ib_{name.lower()}_total", _leading_number(_read(counters / name)))
        return out
