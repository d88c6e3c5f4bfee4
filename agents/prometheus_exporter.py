"""An optional Prometheus ``/metrics`` endpoint on the agent, in dcgm-exporter's names, units and labels.

Operators who already run Prometheus and Grafana point their existing
dcgm-exporter dashboards and alert rules at the agent and they work as they
are: the same series names (``DCGM_FI_DEV_GPU_UTIL``, ``DCGM_FI_DEV_FB_USED``
in MiB, ``DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION`` in mJ, ...), and the same
labels (``gpu``, ``UUID``, ``device``, ``modelName``, ``pci_bus_id``,
``Hostname``, and ``pod``, ``namespace``, ``container`` from attribution).
``DCGM_FI_DEV_XID_ERRORS`` is, as in DCGM, the last XID the GPU logged (0 if
none yet); it changes the moment an XID is pushed, not at the next scrape.

The page is the last scrape's values, built once per scrape, not per
request. The text format is written here rather than with prometheus-client
because its counters must end in ``_total``, and dcgm-exporter's do not.

>>> exp = PrometheusExporter("node-1")
>>> exp.update([{"gpu": 0, "uuid": "GPU-a", "metric": "fb_used_bytes", "value": 2**30, "unit": "B"}])
>>> print(exp.page().decode().splitlines()[2])
DCGM_FI_DEV_FB_USED{gpu="0",UUID="GPU-a",device="nvidia0",modelName="",pci_bus_id="",Hostname="node-1",container="",namespace="",pod=""} 1024
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from agents.collectors.base import NodeContext

log = logging.getLogger("gpuwatch.agent.exporter")

#: gpuwatch metric -> (dcgm-exporter name, Prometheus type, scale to DCGM's unit, help).
DCGM_NAMES: dict[str, tuple[str, str, float, str]] = {
    "gpu_util_pct": ("DCGM_FI_DEV_GPU_UTIL", "gauge", 1.0, "GPU utilization (in %)."),
    "mem_util_pct": ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", 1.0, "Memory utilization (in %)."),
    "enc_util_pct": ("DCGM_FI_DEV_ENC_UTIL", "gauge", 1.0, "Encoder utilization (in %)."),
    "dec_util_pct": ("DCGM_FI_DEV_DEC_UTIL", "gauge", 1.0, "Decoder utilization (in %)."),
    "sm_clock_mhz": ("DCGM_FI_DEV_SM_CLOCK", "gauge", 1.0, "SM clock frequency (in MHz)."),
    "mem_clock_mhz": ("DCGM_FI_DEV_MEM_CLOCK", "gauge", 1.0, "Memory clock frequency (in MHz)."),
    "gpu_temp_c": ("DCGM_FI_DEV_GPU_TEMP", "gauge", 1.0, "GPU temperature (in C)."),
    "mem_temp_c": ("DCGM_FI_DEV_MEMORY_TEMP", "gauge", 1.0, "Memory temperature (in C)."),
    "power_w": ("DCGM_FI_DEV_POWER_USAGE", "gauge", 1.0, "Power draw (in W)."),
    "power_limit_w": ("DCGM_FI_DEV_POWER_MGMT_LIMIT", "gauge", 1.0, "Power management limit (in W)."),
    "energy_j": ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter", 1000.0,
                 "Total energy consumption since boot (in mJ)."),
    "fan_speed_pct": ("DCGM_FI_DEV_FAN_SPEED", "gauge", 1.0, "Fan speed (in %)."),
    "pstate": ("DCGM_FI_DEV_PSTATE", "gauge", 1.0, "Performance state."),
    "fb_used_bytes": ("DCGM_FI_DEV_FB_USED", "gauge", 2.0 ** -20, "Framebuffer memory used (in MiB)."),
    "fb_free_bytes": ("DCGM_FI_DEV_FB_FREE", "gauge", 2.0 ** -20, "Framebuffer memory free (in MiB)."),
    "fb_reserved_bytes": ("DCGM_FI_DEV_FB_RESERVED", "gauge", 2.0 ** -20, "Framebuffer memory reserved (in MiB)."),
    "pcie_replay_total": ("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "counter", 1.0, "Total number of PCIe retries."),
    "pcie_tx_bytes_s": ("DCGM_FI_PROF_PCIE_TX_BYTES", "gauge", 1.0, "PCIe bytes transmitted per second."),
    "pcie_rx_bytes_s": ("DCGM_FI_PROF_PCIE_RX_BYTES", "gauge", 1.0, "PCIe bytes received per second."),
    "ecc_sbe_volatile_total": ("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "counter", 1.0, "Single-bit volatile ECC errors."),
    "ecc_dbe_volatile_total": ("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "counter", 1.0, "Double-bit volatile ECC errors."),
    "ecc_sbe_aggregate_total": ("DCGM_FI_DEV_ECC_SBE_AGG_TOTAL", "counter", 1.0, "Single-bit persistent ECC errors."),
    "ecc_dbe_aggregate_total": ("DCGM_FI_DEV_ECC_DBE_AGG_TOTAL", "counter", 1.0, "Double-bit persistent ECC errors."),
    "retired_pages_sbe_total": ("DCGM_FI_DEV_RETIRED_SBE", "counter", 1.0, "Pages retired for single-bit errors."),
    "retired_pages_dbe_total": ("DCGM_FI_DEV_RETIRED_DBE", "counter", 1.0, "Pages retired for double-bit errors."),
    "retired_pages_pending": ("DCGM_FI_DEV_RETIRED_PENDING", "gauge", 1.0, "Pages pending retirement."),
    "remapped_rows_correctable_total": ("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "counter", 1.0,
                                        "Rows remapped for correctable errors."),
    "remapped_rows_uncorrectable_total": ("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "counter", 1.0,
                                          "Rows remapped for uncorrectable errors."),
    "remapped_rows_failure": ("DCGM_FI_DEV_ROW_REMAP_FAILURE", "gauge", 1.0, "Whether remapping of rows has failed."),
    "nvlink_crc_flit_errors_total": ("DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL", "counter", 1.0,
                                     "NVLink flow-control CRC errors."),
    "nvlink_crc_data_errors_total": ("DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL", "counter", 1.0,
                                     "NVLink data CRC errors."),
    "nvlink_replay_errors_total": ("DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL", "counter", 1.0,
                                   "NVLink retries."),
    "nvlink_recovery_errors_total": ("DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL", "counter", 1.0,
                                     "NVLink recovery errors."),
}
XID = ("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered.")
_LABELS = ("gpu", "UUID", "device", "modelName", "pci_bus_id", "Hostname", "container", "namespace", "pod")


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class PrometheusExporter:
    """Holds the page for the last scrape; :meth:`serve` answers ``GET /metrics`` from a thread."""

    def __init__(self, hostname: str, context: NodeContext | None = None) -> None:
        self.hostname = hostname
        self.context = context
        self._values: dict[int, dict[str, float]] = {}
        self._gpu_labels: dict[int, dict[str, str]] = {}
        self._uuid: dict[int, str] = {}
        self._last_xid: dict[int, int] = {}
        self._page = b""
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.scrapes = 0

    # -- fed by the agent ------------------------------------------------------------------
    def update(self, samples: list[dict[str, Any]]) -> None:
        """Take one scrape's samples (after attribution) and rebuild the page."""
        values: dict[int, dict[str, float]] = {}
        for s in samples:
            g = s["gpu"]
            if g < 0 or s["metric"] not in DCGM_NAMES:
                continue
            labels = s.get("labels") or {}
            if "pid" in labels or "mig_uuid" in labels:
                continue  # per-process and per-MIG series have no dcgm-exporter GPU-level twin
            values.setdefault(g, {})[s["metric"]] = s["value"]
            self._uuid[g] = s.get("uuid", "")
            self._gpu_labels[g] = {k: labels.get(k, "") for k in ("container", "namespace", "pod")}
        with self._lock:
            self._values = values
            for g in values:
                self._last_xid.setdefault(g, 0)
            self._page = self._render()

    def event(self, ev: dict[str, Any]) -> None:
        """An XID on a GPU: the XID gauge moves now."""
        if ev.get("source") == "xid" and ev.get("gpu", -1) >= 0:
            with self._lock:
                self._last_xid[ev["gpu"]] = int(ev.get("code", 0))
                self._page = self._render()

    # -- the page --------------------------------------------------------------------------
    def _labels(self, g: int) -> str:
        ident = self.context.gpus.get(g) if self.context is not None else None
        extra = self._gpu_labels.get(g, {})
        vals = (str(g), self._uuid.get(g, "") or (ident.uuid if ident else ""), f"nvidia{g}",
                ident.name if ident else "", ident.pci_bus_id if ident else "", self.hostname,
                extra.get("container", ""), extra.get("namespace", ""), extra.get("pod", ""))
        return ",".join(f'{k}="{_escape(v)}"' for k, v in zip(_LABELS, vals))

    def _render(self) -> bytes:
        lines: list[str] = []
        labels = {g: self._labels(g) for g in sorted(set(self._values) | set(self._last_xid))}
        for metric, (name, kind, scale, help_) in DCGM_NAMES.items():
            rows = [(g, vals[metric]) for g, vals in sorted(self._values.items()) if metric in vals]
            if not rows:
                continue
            lines += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]
            lines += [f"{name}{{{labels[g]}}} {v * scale:.10g}" for g, v in rows]
        if self._last_xid:
            name, kind, help_ = XID
            lines += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]
            lines += [f"{name}{{{labels[g]}}} {code}" for g, code in sorted(self._last_xid.items())]
        return ("\n".join(lines) + "\n").encode()

    def page(self) -> bytes:
        with self._lock:
            return self._page

    # -- serving ---------------------------------------------------------------------------
    def serve(self, host: str, port: int) -> int:
        """Answer ``GET /metrics`` on (host, port) from a daemon thread; returns the bound port."""
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404, "only /metrics is served here")
                    return
                body = exporter.page()
                exporter.scrapes += 1
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True).start()
        bound = self._server.server_address[1]
        log.info("serving Prometheus /metrics on %s:%d", host, bound)
        return bound

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
