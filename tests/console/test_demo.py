"""``gpuwatch demo --keep`` as a user runs it with its output in a file (issue 15)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import orjson

from pipelines.devstack import ROOT


def test_demo_names_fault_delay_and_one_incident_then_keeps_the_stack_for_down(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUWATCH_")}
    env.update(PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", GPUWATCH_HOME=str(tmp_path / "home"))
    demo_home = tmp_path / "demo"
    try:
        r = subprocess.run([sys.executable, "-m", "pipelines.cli", "demo", "--keep", "--home", str(demo_home)],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        out = r.stdout
        assert r.returncode == 0, out[-3000:] + r.stderr[-3000:]
        assert "\x1b" not in out
        assert "Injected fault: thermal_runaway on node-2 GPU 3, from scrape 30 for 40 scrapes" in out
        assert re.search(r"detection delay: \d+ s", out), out
        fired = re.search(r"incident (\w+) \(([0-9a-f]{16})\) on node-2 GPU 3 FIRING", out)
        resolved = re.search(r"incident (\w+) \(([0-9a-f]{16})\) on node-2 GPU 3 RESOLVED", out)
        assert fired and resolved and fired.groups() == resolved.groups(), out
        assert f"/console/#incident={fired.group(2)}" in out
        assert "The stack keeps running: console http://127.0.0.1:" in out
        record = orjson.loads((demo_home / "run" / "stack.json").read_bytes())
        pids = [p["pid"] for p in record["parts"]]
    finally:
        down = subprocess.run([sys.executable, "-m", "pipelines.cli", "down"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
    assert "stopped pipeline, notify, kafka" in down.stdout, down.stdout + down.stderr
    from infra.kafka.broker import _alive

    assert not [pid for pid in pids if _alive(pid)]
