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


def test_status_rates_are_per_minute_against_the_previous_sample(tmp_path):
    import time

    import orjson

    from pipelines.stack_status import _last_minute

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "status-sample.json").write_bytes(orjson.dumps(
        {"t": time.time() - 30, "url": "u", "values": {"rows_written": 1000.0, "insert_errors": 1.0}}))
    out = _last_minute(tmp_path, "u", {"rows_written": 2000.0, "insert_errors": 1.0})
    assert 1900 < out["rows_written_per_minute"] < 2100 and out["insert_errors_per_minute"] == 0
    # A restarted pipeline (counters went down) gives no rate rather than a negative one.
    (tmp_path / "run" / "status-sample.json").write_bytes(orjson.dumps(
        {"t": time.time() - 30, "url": "u", "values": {"rows_written": 5000.0, "insert_errors": 0.0}}))
    assert _last_minute(tmp_path, "u", {"rows_written": 10.0, "insert_errors": 0.0})["per_minute_over_s"] is None
