"""CLI details from issue 15 that need no broker."""

from __future__ import annotations

import subprocess
import sys

from pipelines.devstack import ROOT


def gw(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env=env)


def test_version():
    r = gw("--version")
    assert r.returncode == 0 and r.stdout.startswith("gpuwatch ") and r.stdout.split()[1][0].isdigit()


def test_down_and_status_without_a_stack_say_so_plainly(tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUWATCH_")}
    env.update(PYTHONPATH=str(ROOT), GPUWATCH_HOME=str(tmp_path), GPUWATCH_KAFKA_BOOTSTRAP="127.0.0.1:1")
    down = gw("down", env=env)
    assert down.returncode == 0 and "nothing to stop" in down.stdout
    st = gw("status", env=env)
    assert st.returncode == 3 and "Traceback" not in st.stderr
    assert "unreachable" in st.stdout and "not reachable" in st.stdout
