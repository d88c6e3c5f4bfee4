"""The real-host agent loop: one valid batch per scrape, events, logs, heartbeats, and survival."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import pytest

from agents.collectors.base import Collector
from agents.collectors.nvml_fake import FakeGpu, FakeNvml
from agents.config import AgentConfig
from agents.node_agent import NodeAgent, make_series_unique
from schemas.codec import decode
from schemas.events import Heartbeat, NodeEvent
from schemas.logs import LogBatch
from schemas.metrics import MetricBatch

FIXTURES = Path(__file__).resolve().parent / "fixtures"


class RecordingDelivery:
    """Stands in for Kafka+spool: keeps every message, decoded, per topic."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str, bytes]] = []
        self.spool_dropped = 0
        self.closed = False

    def send(self, topic, key, payload):
        self.messages.append((topic, key, payload))

    def pump(self):
        pass

    def expedite(self):
        pass

    def stats(self):
        return {"spool_messages": 0, "spool_bytes": 0, "spool_dropped": self.spool_dropped}

    def close(self, timeout_s=0):
        self.closed = True
        return 0

    def of(self, topic: str, model):
        return [decode(p, model) for t, _, p in self.messages if t == topic]


def _config(tmp_path, **collectors) -> AgentConfig:
    base = {"host": {"enabled": True}, "infiniband": {"enabled": False}, "jobsdk": {"listen": "127.0.0.1:0"},
            "attribution": {"proc_root": str(tmp_path / "proc"), "pod_log_root": str(FIXTURES / "var_log_pods")},
            "xid": {"source": str(tmp_path / "kern.log")}}
    for k, v in collectors.items():
        base[k] = {**base.get(k, {}), **v}
    shutil.copytree(FIXTURES / "proc", tmp_path / "proc", dirs_exist_ok=True)
    (tmp_path / "kern.log").touch()
    return AgentConfig(node="gpu-node-7", state_dir=tmp_path / "state", labels={"cluster": "test"},
                       collectors=base)


def _gpus() -> FakeNvml:
    return FakeNvml([FakeGpu(0, processes=[(1001, 20 * 2**30, 90, 40)]),
                     FakeGpu(1, processes=[(2001, 10 * 2**30, 50, 20), (2002, 5 * 2**30, 30, 10)]),
                     FakeGpu(2), FakeGpu(3)])


def test_one_scrape_is_one_valid_batch_with_job_labels_and_a_heartbeat(tmp_path):
    d = RecordingDelivery()
    agent = NodeAgent(_config(tmp_path), d, nvml=_gpus())
    agent.tick()
    time.sleep(0.1)  # CPU % needs at least a few kernel ticks between scrapes
    agent.tick(mono=time.monotonic() + 1.0)
    batches = d.of("gpuwatch.metrics.v1", MetricBatch)
    assert len(batches) == 2 and [b.seq for b in batches] == [1, 2]
    b = batches[-1]
    assert b.node == "gpu-node-7" and b.labels == {"cluster": "test"}
    assert all(k == "gpu-node-7" for _, k, _ in d.messages)
    gpu_of = {(s.gpu, s.metric): s for s in b.samples if s.ts is None}
    assert gpu_of[(0, "gpu_temp_c")].labels["job"] == "llama-train-worker-0"
    assert gpu_of[(0, "gpu_temp_c")].labels["namespace"] == "ml-team"
    assert gpu_of[(1, "power_w")].labels["job"] == "4242,777"  # two jobs share GPU 1
    assert "job" not in gpu_of[(2, "power_w")].labels
    procs = [s for s in b.samples if s.metric == "process_fb_used_bytes" and s.gpu == 1]
    assert {s.labels["pid"]: s.labels["job"] for s in procs} == {"2001": "4242", "2002": "777"}
    assert {s.gpu for s in b.samples} >= {-1, 0, 1, 2, 3}
    assert any(s.metric == "cpu_util_pct" for s in b.samples)
    assert any(s.metric == "agent_rss_bytes" for s in b.samples)
    hb = d.of("gpuwatch.heartbeats.v1", Heartbeat)
    assert len(hb) == 1  # heartbeats have their own schedule
    assert [g.index for g in hb[0].gpus] == [0, 1, 2, 3] and hb[0].gpus[0].memory_total_bytes == 80 * 2**30
    assert hb[0].collectors == {"nvml": True, "xid": True, "host": True, "jobsdk": True}


def test_a_crashing_collector_is_marked_unhealthy_logged_once_and_the_rest_carry_on(tmp_path, caplog):
    class Broken(Collector):
        name = "broken"

        def collect(self, now):
            raise OSError("sensor unplugged")

    d = RecordingDelivery()
    cfg = _config(tmp_path)
    agent = NodeAgent(cfg, d, nvml=_gpus())
    agent.slots.append(type(agent.slots[0])(Broken(), 1.0))
    with caplog.at_level(logging.WARNING, logger="gpuwatch.agent"):
        for _ in range(3):
            agent.tick(mono=time.monotonic() + _ * 60)
    assert len(d.of("gpuwatch.metrics.v1", MetricBatch)) == 3
    assert sum("sensor unplugged" in r.getMessage() for r in caplog.records) == 1
    hb = d.of("gpuwatch.heartbeats.v1", Heartbeat)[-1]
    assert hb.collectors["broken"] is False and hb.collectors["nvml"] is True


def test_xid_79_end_to_end_event_then_the_gpu_leaves_batches_and_inventory(tmp_path):
    nv = _gpus()
    d = RecordingDelivery()
    agent = NodeAgent(_config(tmp_path), d, nvml=nv)
    agent.tick()
    nv.gpus[3].lost = True
    with open(tmp_path / "kern.log", "a") as f:  # FakeGpu 3's bus id is 00000000:47:00.0
        f.write("[ 8100.517039] NVRM: Xid (PCI:0000:47:00): 79, pid=0, GPU has fallen off the bus.\n")
    deadline = time.monotonic() + 5  # the XID is pushed by the reader thread, not the tick
    while time.monotonic() < deadline and agent.counts["events_pushed"] == 0:
        time.sleep(0.01)
    agent.tick(mono=time.monotonic() + 20)
    agent.tick(mono=time.monotonic() + 40)
    events = d.of("gpuwatch.events.v1", NodeEvent)
    xid = [e for e in events if e.source == "xid"]
    health = [e for e in events if e.source == "health"]
    assert len(xid) == 1 and xid[0].code == 79 and xid[0].gpu == 3 and xid[0].action == "reboot"
    assert len(health) == 1 and health[0].gpu == 3
    last = d.of("gpuwatch.metrics.v1", MetricBatch)[-1]
    assert 3 not in {s.gpu for s in last.samples} and {0, 1, 2} <= {s.gpu for s in last.samples}
    hb = d.of("gpuwatch.heartbeats.v1", Heartbeat)[-1]
    assert [g.index for g in hb.gpus] == [0, 1, 2] and hb.collectors["nvml"] is True


def test_log_records_go_out_as_log_batches(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("")
    d = RecordingDelivery()
    cfg = _config(tmp_path, logfiles={"enabled": True, "paths": [str(log)], "multiline_timeout_s": 0})
    agent = NodeAgent(cfg, d, nvml=_gpus())
    agent.tick()
    with open(log, "a") as f:
        for i in range(12_000):
            f.write(f"2024-01-01 INFO step {i}\n")
    agent.tick(mono=time.monotonic() + 1.0)
    batches = d.of("gpuwatch.logs.v1", LogBatch)
    assert sum(len(b.records) for b in batches) == 12_000 and len(batches) == 3  # 5000-record batches
    assert batches[0].records[0].message == "2024-01-01 INFO step 0" and batches[0].records[0].level == "INFO"


def test_a_full_spool_is_announced_as_an_agent_event(tmp_path):
    d = RecordingDelivery()
    agent = NodeAgent(_config(tmp_path), d, nvml=_gpus())
    agent.tick()
    d.spool_dropped = 42
    agent.tick(mono=time.monotonic() + 1.0)
    ev = [e for e in d.of("gpuwatch.events.v1", NodeEvent) if e.source == "agent"]
    assert len(ev) == 1 and "42" in ev[0].title and ev[0].severity == "warning"


def test_shutdown_runs_a_final_scrape_and_closes_delivery(tmp_path):
    import threading

    d = RecordingDelivery()
    agent = NodeAgent(_config(tmp_path, **{"nvml": {"enabled": False}}), d)
    stop = threading.Event()
    t = threading.Thread(target=agent.run, args=(stop,))
    t.start()
    time.sleep(0.3)
    stop.set()
    t.join(10)
    assert not t.is_alive() and d.closed
    assert len(d.of("gpuwatch.metrics.v1", MetricBatch)) >= 2


def test_repeated_series_are_made_unique_for_the_batch_contract():
    now = time.time()
    samples = [{"gpu": 0, "metric": "process_fb_used_bytes", "value": float(i), "labels": {"pid": str(i)}}
               for i in range(3)] + [{"gpu": 0, "metric": "gpu_temp_c", "value": 50.0}]
    make_series_unique(samples, now)
    MetricBatch.model_validate({"node": "n", "ts": now, "samples": samples})
    assert [s.get("ts") for s in samples] == [None, pytest.approx(now + 1e-6), pytest.approx(now + 2e-6), None]


def test_a_non_finite_sample_is_dropped_and_counted_not_the_whole_batch(tmp_path):
    """One NaN (any collector's) made the pipeline dead-letter the node's whole batch: every GPU sample too."""
    class Nan(Collector):
        name = "nan"

        def collect(self, now):
            return [{"gpu": -1, "uuid": "", "metric": "weird", "value": float("nan"), "unit": "", "labels": {}},
                    {"gpu": -1, "uuid": "", "metric": "huge", "value": float("inf"), "unit": "", "labels": {}}]

    d = RecordingDelivery()
    agent = NodeAgent(_config(tmp_path), d, nvml=_gpus())
    agent.slots.append(type(agent.slots[0])(Nan(), 1.0))
    agent.tick()
    [batch] = d.of("gpuwatch.metrics.v1", MetricBatch)  # decodes: the contract refuses NaN
    names = {s.metric for s in batch.samples}
    assert "gpu_temp_c" in names and not {"weird", "huge"} & names
    assert agent.counts["samples_nonfinite"] == 2
