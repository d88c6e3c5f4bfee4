"""Scraping Prometheus/OpenMetrics endpoints (dcgm-exporter, vLLM style) with renaming and label rules."""

from __future__ import annotations

import http.server
import threading

import pytest

from agents.collectors.base import NodeContext
from agents.collectors.prometheus_scrape import PrometheusCollector, PrometheusConfig, ScrapeTarget
from schemas.metrics import MetricSample

DCGM = """# HELP DCGM_FI_DEV_GPU_TEMP GPU temperature (in C).
# TYPE DCGM_FI_DEV_GPU_TEMP gauge
DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-aaa",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="n1"} 61
DCGM_FI_DEV_GPU_TEMP{gpu="1",UUID="GPU-bbb",device="nvidia1",modelName="NVIDIA H100 80GB HBM3",Hostname="n1"} 64
# HELP DCGM_FI_DEV_POWER_USAGE Power draw (in W).
# TYPE DCGM_FI_DEV_POWER_USAGE gauge
DCGM_FI_DEV_POWER_USAGE{gpu="0",UUID="GPU-aaa",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="n1"} 512.5
# HELP DCGM_FI_DEV_XID_ERRORS Value of the last XID error encountered.
# TYPE DCGM_FI_DEV_XID_ERRORS gauge
DCGM_FI_DEV_XID_ERRORS{gpu="0",UUID="GPU-aaa",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="n1"} 0
# TYPE weird_value gauge
weird_value NaN
"""

VLLM = """# HELP vllm:num_requests_running Number of requests currently running on GPU.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="llama"} 7.0
# HELP vllm:e2e_request_latency_seconds Histogram of end to end request latency in seconds.
# TYPE vllm:e2e_request_latency_seconds histogram
vllm:e2e_request_latency_seconds_bucket{le="0.5",model_name="llama"} 3.0
vllm:e2e_request_latency_seconds_bucket{le="+Inf",model_name="llama"} 5.0
vllm:e2e_request_latency_seconds_count{model_name="llama"} 5.0
vllm:e2e_request_latency_seconds_sum{model_name="llama"} 4.2
# EOF
"""


@pytest.fixture
def exporter():
    pages = {"/dcgm": (DCGM, "text/plain; version=0.0.4"),
             "/vllm": (VLLM, "application/openmetrics-text; version=1.0.0; charset=utf-8")}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if self.path not in pages:
                self.send_error(404)
                return
            body, ctype = pages[self.path]
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def _collector(targets) -> PrometheusCollector:
    c = PrometheusCollector(PrometheusConfig(enabled=True, targets=targets), NodeContext(node="n1"))
    c.start()
    return c


def test_dcgm_exporter_series_are_renamed_and_put_on_their_gpu(exporter):
    c = _collector([ScrapeTarget(url=f"{exporter}/dcgm", rename={"DCGM_FI_DEV_GPU_TEMP": "gpu_temp_c"},
                                 prefix="dcgm_", drop=["DCGM_FI_DEV_XID_.*"],
                                 drop_labels=["Hostname", "modelName", "device"], labels={"source": "dcgm"})])
    samples = c.collect(1.0)
    for s in samples:
        MetricSample.model_validate(s)
    temps = {s["gpu"]: s for s in samples if s["metric"] == "gpu_temp_c"}
    assert temps[0]["value"] == 61 and temps[1]["value"] == 64 and temps[1]["uuid"] == "GPU-bbb"
    assert temps[0]["labels"] == {"gpu": "0", "UUID": "GPU-aaa", "source": "dcgm"}
    assert [s["metric"] for s in samples if s["metric"].startswith("dcgm_")] == ["dcgm_DCGM_FI_DEV_POWER_USAGE"]
    assert c.stats()["dropped"] == 2  # the XID gauge (drop rule) and the NaN value


def test_openmetrics_endpoint_with_histograms_and_keep_rules(exporter):
    c = _collector([ScrapeTarget(url=f"{exporter}/vllm", keep=["vllm:num_requests_running",
                                                                "vllm:e2e_request_latency_seconds_(sum|count)"],
                                 rename_labels={"model_name": "model"})])
    samples = c.collect(1.0)
    got = {s["metric"]: s for s in samples}
    assert set(got) == {"vllm:num_requests_running", "vllm:e2e_request_latency_seconds_sum",
                        "vllm:e2e_request_latency_seconds_count"}
    assert got["vllm:num_requests_running"]["value"] == 7 and got["vllm:num_requests_running"]["labels"] == {
        "model": "llama"} and got["vllm:num_requests_running"]["gpu"] == -1


def test_one_dead_target_does_not_stop_the_others(exporter):
    dead = ScrapeTarget(url="http://127.0.0.1:9/metrics", timeout_s=0.5)
    c = _collector([dead, ScrapeTarget(url=f"{exporter}/dcgm")])
    samples = c.collect(1.0)
    assert any(s["metric"] == "DCGM_FI_DEV_GPU_TEMP" for s in samples)
    assert c.stats()["errors"] == 1
    c2 = _collector([dead])
    with pytest.raises(RuntimeError, match="127.0.0.1:9"):  # all targets down: the runner marks it unhealthy
        c2.collect(1.0)


def test_bad_target_config_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="must start with http"):
        ScrapeTarget(url="localhost:9400/metrics")
    with pytest.raises(ValueError, match="not a valid regular expression"):
        ScrapeTarget(url="http://127.0.0.1:1/m", keep=["("])
