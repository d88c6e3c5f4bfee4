"""``make test`` under CI (CI=true) fails when Alertmanager cannot be installed, instead of skipping its tests.

The real Makefile runs with a PATH where the Alertmanager install fails (no
binary, an ``apt-get`` that fails), an up-to-date install stamp, and a stand-in
``python`` that only records that the test suite was started.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_make_test(tmp_path: Path, ci: str | None) -> tuple[subprocess.CompletedProcess, bool]:
    tools = tmp_path / "tools"
    venv_bin = tmp_path / "venv-bin"
    tools.mkdir()
    venv_bin.mkdir()
    for name in ("sh", "id", "cat", "cksum", "cut"):
        (tools / name).symlink_to(shutil.which(name))
    for name in ("apt-get", "sudo"):
        (tools / name).write_text("#!/bin/sh\necho 'E: no network' >&2\nexit 100\n")
        (tools / name).chmod(0o755)
    marker = tmp_path / "pytest-ran"
    (venv_bin / "python").write_text(f"#!/bin/sh\n{shutil.which('touch')} {marker}\n")
    (venv_bin / "python").chmod(0o755)
    stamp = tmp_path / "installed"
    stamp.touch()
    env = {"PATH": str(tools), "HOME": str(tmp_path)}
    if ci is not None:
        env["CI"] = ci
    r = subprocess.run([shutil.which("make"), "-s", "test", f"STAMP={stamp}", f"BIN={venv_bin}"], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=60)
    return r, marker.exists()


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_under_ci_a_missing_alertmanager_fails_make_test(tmp_path):
    r, suite_ran = run_make_test(tmp_path, ci="true")
    assert r.returncode != 0, r.stdout + r.stderr
    assert "CI=true" in r.stdout + r.stderr
    assert not suite_ran


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_outside_ci_a_missing_alertmanager_only_skips_its_tests(tmp_path):
    r, suite_ran = run_make_test(tmp_path, ci=None)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "its tests are skipped" in r.stdout + r.stderr
    assert suite_ran

