"""``gpuwatch query --format table`` shows data as it is, and times with their zone (issue 15)."""

from __future__ import annotations

import os
import subprocess
import sys

from pipelines.devstack import ROOT


def test_table_shows_data_as_it_is_with_zoned_times(tmp_path):
    data = tmp_path / "ch"
    data.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GPUWATCH_HOME": str(tmp_path)}
    sql = ("SELECT ':x: failed' AS text, '[red]boom[/red]' AS markup, "
           "toDateTime64('2026-01-02 03:04:05.250', 3, 'UTC') AS ts")
    r = subprocess.run([sys.executable, "-m", "pipelines.cli", "query", sql, "--format", "table",
                        "--clickhouse", f"chdb://{data}"], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert ":x: failed" in r.stdout and "❌" not in r.stdout
    assert "[red]boom[/red]" in r.stdout
    assert "2026-01-02T03:04:05.250000Z" in r.stdout
    assert "\x1b" not in r.stdout
