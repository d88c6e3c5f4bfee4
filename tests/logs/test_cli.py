"""``gpuwatch logs templates``: offline mining with the pipeline's ids."""

from __future__ import annotations

import subprocess

from pipelines.logs.miner import TemplateMiner


def run(cmd: list[str], env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*cmd, "logs", "templates", *args], capture_output=True, env=env, timeout=60)


def write_log(path) -> list[str]:
    lines = [f"step {i} loss 2.{i}" for i in range(30)] + [f"worker {w} ready" for w in ("a", "b", "c")]
    path.write_bytes("\n".join(lines).encode() + b"\nGPU 3 said \xff\xfe then stopped\n")
    return lines


def test_templates_prints_each_template_with_its_count(tmp_path, gpuwatch_cmd, subprocess_env):
    log = tmp_path / "train.log"
    write_log(log)
    proc = run(gpuwatch_cmd, subprocess_env, str(log))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode()
    assert out.splitlines()[0] == "3 templates from 34 lines"
    rows = [line.split(None, 2) for line in out.splitlines()[2:]]
    assert [(int(n), text) for n, _, text in rows] == [
        (30, "step <NUM> loss <NUM>"), (3, "worker <*> ready"), (1, "GPU <NUM> said \ufffd\ufffd then stopped")]


def test_assign_writes_each_lines_template_id_as_the_pipeline_would(tmp_path, gpuwatch_cmd, subprocess_env):
    log = tmp_path / "train.log"
    lines = write_log(log)
    proc = run(gpuwatch_cmd, subprocess_env, str(log), "--assign")
    assert proc.returncode == 0, proc.stderr
    out = [line.split("\t", 1) for line in proc.stdout.decode().splitlines()]
    assert len(out) == 34 and [text for _, text in out[:33]] == lines
    miner = TemplateMiner()
    for line in lines:  # the CLI assigns each line its template after learning the whole file
        miner.mine(line)
    assert [int(tid) for tid, _ in out[:33]] == [miner.mine(line).template_id for line in lines]
    assert len({tid for tid, text in out if text.startswith("worker")}) == 1


def test_a_missing_file_is_a_usage_error(tmp_path, gpuwatch_cmd, subprocess_env):
    proc = run(gpuwatch_cmd, subprocess_env, str(tmp_path / "nope.log"))
    assert proc.returncode == 2 and b"no such file" in proc.stderr
