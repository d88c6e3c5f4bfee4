"""``gpuwatch agent`` as an operator runs it: a real process, the real broker, SIGTERM to stop."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid

import pytest
import yaml
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

from schemas.codec import decode
from schemas.events import Heartbeat, NodeEvent
from schemas.logs import LogBatch
from schemas.metrics import MetricBatch


def _write_config(tmp_path, topics: dict, **extra) -> str:
    log = tmp_path / "job.log"
    log.write_text("")
    kern = tmp_path / "kern.log"
    kern.write_text("")
    cfg = {"node": "cli-node-1", "interval_s": 0.5, "heartbeat_interval_s": 1, "state_dir": str(tmp_path / "state"),
           "kafka": {"topics": topics, "delivery_timeout_s": 5},
           "collectors": {"nvml": {"enabled": False}, "jobsdk": {"listen": "127.0.0.1:0"},
                          "xid": {"source": str(kern)},
                          "logfiles": {"enabled": True, "paths": [str(log)], "multiline_timeout_s": 0}},
           **extra}
    p = tmp_path / "agent.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return str(p)


@pytest.mark.integration
def test_agent_publishes_to_kafka_and_stops_cleanly_on_sigterm(bootstrap, topic_prefix, tmp_path, gpuwatch_cmd,
                                                               subprocess_env):
    topics = {k: f"{topic_prefix}.{k}" for k in ("metrics", "events", "heartbeats", "logs")}
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(t, 1, 1) for t in topics.values()]).values():
        f.result(30)
    cfg = _write_config(tmp_path, topics)
    proc = subprocess.Popen([*gpuwatch_cmd, "agent", "--config", cfg, "--bootstrap", bootstrap], env=subprocess_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2.5)
        with open(tmp_path / "job.log", "a") as f:
            f.write("Traceback (most recent call last):\n  File \"x.py\", line 1\nRuntimeError: boom\n")
        with open(tmp_path / "kern.log", "a") as f:
            f.write("NVRM: Xid (PCI:0000:3b:00): 48, pid=7, name=python, An uncorrectable double bit error\n")
        time.sleep(2.0)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert time.monotonic() - t0 < 15
    assert "stopped after" in err

    got: dict[str, list[bytes]] = {t: [] for t in topics.values()}
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex, "auto.offset.reset": "earliest"})
    c.subscribe(list(topics.values()))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (got[topics["events"]] and got[topics["logs"]]  # every topic:
                                                 and len(got[topics["heartbeats"]]) >= 3   # the consumer reads
                                                 and len(got[topics["metrics"]]) >= 6):    # them in any order
        m = c.poll(0.5)
        if m is not None and not m.error():
            got[m.topic()].append(m.value())
    c.close()
    batches = [decode(v, MetricBatch) for v in got[topics["metrics"]]]
    assert len(batches) >= 6 and all(b.node == "cli-node-1" for b in batches)
    assert [b.seq for b in batches] == sorted(b.seq for b in batches)
    hbs = [decode(v, Heartbeat) for v in got[topics["heartbeats"]]]
    assert len(hbs) >= 3 and hbs[-1].collectors["host"] is True and hbs[-1].agent_version
    ev = [decode(v, NodeEvent) for v in got[topics["events"]]]
    assert [(e.code, e.action) for e in ev if e.source == "xid"] == [(48, "reset_gpu")]
    logs = [r for v in got[topics["logs"]] for r in decode(v, LogBatch).records]
    assert [r.level for r in logs] == ["ERROR"] and logs[0].message.endswith("RuntimeError: boom")


def test_once_prints_one_scrape_without_kafka(tmp_path, gpuwatch_cmd, subprocess_env):
    cfg = _write_config(tmp_path, {"metrics": "m", "events": "e", "heartbeats": "h", "logs": "l"})
    r = subprocess.run([*gpuwatch_cmd, "agent", "--config", cfg, "--once"], env=subprocess_env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["topic"] for x in lines if x["topic"] == "m"] == ["m"]
    assert any(x["topic"] == "h" for x in lines)
    batch = next(x["value"] for x in lines if x["topic"] == "m")
    assert any(s["metric"] == "cpu_util_pct" for s in batch["samples"])  # rates present: second scrape


def test_a_bad_config_exits_2_with_the_reason(tmp_path, gpuwatch_cmd, subprocess_env):
    p = tmp_path / "bad.yaml"
    p.write_text("interval_s: fast\ncollectors: {nvml: {enabeld: true}}\n")
    r = subprocess.run([*gpuwatch_cmd, "agent", "--config", str(p), "--once"], env=subprocess_env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "interval_s" in r.stderr and "collectors.nvml.enabeld: unknown setting" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_state_dir_that_cannot_be_made_is_refused_at_start(tmp_path, gpuwatch_cmd, subprocess_env):
    """It was found at shutdown (a traceback while saving the XID cursor, exit 0): the cursor never kept."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cfg = _write_config(tmp_path, {"metrics": "m", "events": "e", "heartbeats": "h", "logs": "l"},
                        state_dir=str(blocker / "state"))
    r = subprocess.run([*gpuwatch_cmd, "agent", "--config", cfg, "--bootstrap", "127.0.0.1:1"],
                       env=subprocess_env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "state_dir" in r.stderr and "set state_dir to a writable directory" in r.stderr
    assert "Traceback" not in r.stderr
    r = subprocess.run([*gpuwatch_cmd, "agent", "--config", cfg, "--once"], env=subprocess_env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "printing only, so going on without one" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and r.stdout.strip()


def test_a_metrics_port_out_of_range_is_one_line(tmp_path, gpuwatch_cmd, subprocess_env):
    cfg = _write_config(tmp_path, {"metrics": "m", "events": "e", "heartbeats": "h", "logs": "l"})
    r = subprocess.run([*gpuwatch_cmd, "agent", "--config", cfg, "--once", "--metrics-port", "99999"],
                       env=subprocess_env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--metrics-port 99999 is out of range" in r.stderr, r.stderr
