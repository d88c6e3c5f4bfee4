"""The agent's optional /metrics: dcgm-exporter names, units and labels, scraped by a real Prometheus.

Existing dcgm-exporter dashboards and alert rules must work unchanged, so the
test checks the series by the names, units (MiB, mJ) and labels a dashboard
uses, first from the page itself and then as Debian's Prometheus stores them,
queried back through its HTTP API.
"""

from __future__ import annotations

import os
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agents.collectors.nvml_fake import FakeGpu, FakeNvml
from agents.config import AgentConfig
from agents.node_agent import NodeAgent
from agents.prometheus_exporter import PrometheusExporter

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PROMETHEUS = shutil.which("prometheus")
XID_79 = "[ 8100.517039] NVRM: Xid (PCI:0000:47:00): 79, pid=0, GPU has fallen off the bus.\n"


class NullDelivery:
    def send(self, topic, key, payload):
        pass

    def pump(self):
        pass

    def expedite(self):
        pass

    def stats(self):
        return {}

    def close(self, timeout_s=0):
        return 0


def _agent(tmp_path) -> tuple[NodeAgent, PrometheusExporter, int]:
    shutil.copytree(FIXTURES / "proc", tmp_path / "proc", dirs_exist_ok=True)
    (tmp_path / "kern.log").touch()
    cfg = AgentConfig(node="gpu-node-7", state_dir=tmp_path / "state", interval_s=0.5,
                      collectors={"host": {"enabled": False}, "infiniband": {"enabled": False},
                                  "jobsdk": {"enabled": False}, "xid": {"source": str(tmp_path / "kern.log")},
                                  "attribution": {"proc_root": str(tmp_path / "proc"),
                                                  "pod_log_root": str(FIXTURES / "var_log_pods")}})
    nv = FakeNvml([FakeGpu(0, util_gpu=87, processes=[(1001, 20 * 2**30, 90, 40)]), FakeGpu(1), FakeGpu(2),
                   FakeGpu(3)])
    agent = NodeAgent(cfg, NullDelivery(), nvml=nv)
    agent.exporter = PrometheusExporter(cfg.node, agent.context)
    port = agent.exporter.serve("127.0.0.1", 0)
    return agent, agent.exporter, port


def _families(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return {f.name: f for f in text_string_to_metric_families(r.read().decode())}


def test_metrics_page_has_dcgm_exporter_names_units_and_labels(tmp_path):
    agent, exporter, port = _agent(tmp_path)
    try:
        agent.tick()
        fams = _families(port)
        util = {s.labels["gpu"]: s for s in fams["DCGM_FI_DEV_GPU_UTIL"].samples}
        assert set(util) == {"0", "1", "2", "3"} and util["0"].value == 87
        s0 = util["0"]
        assert s0.labels["UUID"] == "GPU-fake0000-0000-0000-0000-000000000000"
        assert s0.labels["Hostname"] == "gpu-node-7" and s0.labels["device"] == "nvidia0"
        assert s0.labels["modelName"] == "NVIDIA H100 80GB HBM3"
        assert s0.labels["namespace"] == "ml-team" and s0.labels["pod"]  # from attribution, as dcgm-exporter's
        assert util["2"].labels["pod"] == "" and util["2"].labels["namespace"] == ""
        fb = {s.labels["gpu"]: s.value for s in fams["DCGM_FI_DEV_FB_USED"].samples}
        assert fb["0"] == 60 * 1024  # MiB, as DCGM reports it
        assert {s.labels["gpu"]: s.value for s in fams["DCGM_FI_DEV_POWER_USAGE"].samples}["1"] == 650.0
        assert fams["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"].samples[0].value == 1_000_000  # mJ
        assert {"DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_MEM_CLOCK",
                "DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"} <= set(fams)
        assert all(s.value == 0 for s in fams["DCGM_FI_DEV_XID_ERRORS"].samples)  # no XID yet
        with open(tmp_path / "kern.log", "a") as f:
            f.write(XID_79)
        deadline = time.monotonic() + 5  # pushed: the gauge moves without another scrape
        xid: dict = {}
        while time.monotonic() < deadline and xid.get("3") != 79:
            time.sleep(0.02)
            xid = {s.labels["gpu"]: s.value for s in _families(port)["DCGM_FI_DEV_XID_ERRORS"].samples}
        assert xid == {"0": 0, "1": 0, "2": 0, "3": 79}
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=5)
    finally:
        exporter.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _query(prom: int, q: str) -> list[dict]:
    url = f"http://127.0.0.1:{prom}/api/v1/query?" + urllib.parse.urlencode({"query": q})
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.loads(r.read())
    assert body["status"] == "success"
    return body["data"]["result"]


@pytest.mark.skipif(PROMETHEUS is None and os.environ.get("CI") != "true", reason="prometheus is not installed; run infra/prometheus/install.sh")
def test_a_real_prometheus_scrapes_the_agent_and_serves_the_series_back(tmp_path):
    agent, exporter, port = _agent(tmp_path)
    stop = threading.Event()
    runner = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    runner.start()
    prom = _free_port()
    (tmp_path / "prometheus.yml").write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: gpuwatch-agent
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
""")
    proc = subprocess.Popen([PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        util: list = []
        while time.monotonic() < deadline and len(util) < 4:
            time.sleep(0.5)
            try:
                util = _query(prom, 'DCGM_FI_DEV_GPU_UTIL{Hostname="gpu-node-7"}')
            except OSError:
                continue  # not listening yet
        assert len(util) == 4, util
        by_gpu = {r["metric"]["gpu"]: r for r in util}
        m0 = by_gpu["0"]["metric"]
        assert m0["UUID"] == "GPU-fake0000-0000-0000-0000-000000000000" and m0["namespace"] == "ml-team"
        assert float(by_gpu["0"]["value"][1]) == 87
        assert "pod" not in by_gpu["2"]["metric"]  # an empty label is no label, as with dcgm-exporter
        # A dcgm-exporter dashboard query, unchanged.
        fb = _query(prom, 'avg by (Hostname) (DCGM_FI_DEV_FB_USED)')
        assert float(fb[0]["value"][1]) == 60 * 1024
        with open(tmp_path / "kern.log", "a") as f:
            f.write(XID_79)
        xid: list = []
        while time.monotonic() < deadline and not xid:
            time.sleep(0.5)
            xid = _query(prom, "DCGM_FI_DEV_XID_ERRORS > 0")
        assert [(r["metric"]["gpu"], float(r["value"][1])) for r in xid] == [("3", 79.0)]
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        stop.set()
        runner.join(10)
        exporter.close()
