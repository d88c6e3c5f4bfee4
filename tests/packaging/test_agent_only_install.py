"""The agent-only install: a fresh virtual environment, `pip install ./packaging/agent`, one scrape.

What a GPU node gets must run without the pipeline: no Faust, no chDB, no
River, no numpy. A dependency the agent needs but the distribution forgot is
a failure here (the import fails in the fresh environment), not a skip. The
install's size on disk is printed and held to the 60 MB target.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MAX_INSTALL_MB = 60.0
#: What the full install carries and a GPU node must not.
PIPELINE_ONLY = ("faust", "chdb", "river", "numpy", "clickhouse_connect", "drain3", "aiokafka", "pipelines")


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


@pytest.fixture(scope="module")
def agent_venv(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("agent-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # pip builds in place (packaging/agent/build, ignored by git); it is removed again after.
    try:
        r = subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "-q", str(ROOT / "packaging/agent")],
                           capture_output=True, text=True, timeout=900)
    finally:
        shutil.rmtree(ROOT / "packaging/agent/build", ignore_errors=True)
        for egg in (ROOT / "packaging/agent").glob("*.egg-info"):
            shutil.rmtree(egg, ignore_errors=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return venv


def test_agent_only_install_runs_one_scrape_without_the_pipeline(agent_venv, tmp_path):
    kern = tmp_path / "kern.log"
    kern.write_text("")
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(yaml.safe_dump({"node": "light-node", "state_dir": str(tmp_path / "state"), "interval_s": 0.2,
                                   "collectors": {"xid": {"source": str(kern)},
                                                  "jobsdk": {"listen": "127.0.0.1:0"}}}))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    r = subprocess.run([str(agent_venv / "bin/gpuwatch-agent"), "--once", "--config", str(cfg)],
                       capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    msgs = [json.loads(line) for line in r.stdout.splitlines()]
    kinds = {m["value"]["kind"] for m in msgs}
    assert {"metrics", "heartbeat"} <= kinds
    metrics = next(m["value"] for m in msgs if m["value"]["kind"] == "metrics")
    assert metrics["node"] == "light-node"
    assert {"cpu_util_pct", "mem_used_pct"} <= {s["metric"] for s in metrics["samples"]}
    hb = next(m["value"] for m in msgs if m["value"]["kind"] == "heartbeat")
    # No GPU here: NVML is reported unhealthy, every other collector runs.
    assert hb["collectors"]["host"] is True and hb["collectors"]["xid"] is True

    # Nothing of the pipeline came along, and the agent never imports it.
    site = next((agent_venv / "lib").glob("python3*/site-packages"))
    present = {p.name.split("-")[0].lower() for p in site.iterdir()}
    assert not present & set(PIPELINE_ONLY), present & set(PIPELINE_ONLY)
    probe = ("import sys, agents.cli, agents.main, agents.node_agent, agents.collectors; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in %r))" % (PIPELINE_ONLY,))
    r = subprocess.run([str(agent_venv / "bin/python"), "-c", probe], capture_output=True, text=True, env=env,
                       cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr

    total = _dir_bytes(site) / 2**20
    tooling = sum(_dir_bytes(p) for p in site.iterdir() if p.is_dir() and p.name.split("-")[0] in ("pip",
                                                                                                 "setuptools")) / 2**20
    print(f"agent-only install: {total - tooling:.1f} MB on disk ({total:.1f} MB with pip itself)")
    assert total - tooling < MAX_INSTALL_MB
