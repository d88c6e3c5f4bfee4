"""``gpuwatch logs templates``: offline mining with the pipeline's records, headers and ids."""

from __future__ import annotations

import os
import subprocess

import orjson

from pipelines.logs.miner import TemplateMiner


def run(cmd: list[str], env: dict, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*cmd, "logs", "templates", *args], capture_output=True, env=env, timeout=60, input=stdin)


def write_log(path) -> list[str]:
    lines = [f"step {i} loss 2.{i}" for i in range(30)] + [f"worker is ready on {w}" for w in ("a", "b", "c")]
    path.write_bytes("\n".join(lines).encode() + b"\nGPU 3 said \xff\xfe then stopped\n")
    return lines


def assignments(proc: subprocess.CompletedProcess) -> list[tuple[int, int, str]]:
    rows = [line.split("\t") for line in proc.stdout.decode().splitlines()]
    return [(int(n), int(tid), text) for n, tid, text in rows]


def test_templates_prints_each_template_with_its_count(tmp_path, gpuwatch_cmd, subprocess_env):
    log = tmp_path / "train.log"
    write_log(log)
    proc = run(gpuwatch_cmd, subprocess_env, str(log))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode()
    assert out.splitlines()[0] == "3 templates from 34 records"
    rows = [line.split(None, 2) for line in out.splitlines()[2:]]
    assert [(int(n), text) for n, _, text in rows] == [
        (30, "step <*> loss <*>"), (3, "worker is ready on <*>"), (1, "GPU <*> said \ufffd\ufffd then stopped")]


def test_assign_prints_line_number_template_id_and_text(tmp_path, gpuwatch_cmd, subprocess_env):
    log = tmp_path / "train.log"
    lines = write_log(log)
    proc = run(gpuwatch_cmd, subprocess_env, str(log), "--assign")
    assert proc.returncode == 0, proc.stderr
    out = assignments(proc)
    assert [n for n, _, _ in out] == list(range(1, 35))
    miner = TemplateMiner()
    for line in lines:  # the CLI assigns each line its template after learning the whole file
        miner.mine(line)
    expected = [miner.mine(line) for line in lines]
    assert [(tid, text) for _, tid, text in out[:33]] == [(m.template_id, m.text) for m in expected]
    assert len({tid for _, tid, text in out if text.startswith("worker")}) == 1


def test_assign_numbers_blank_lines_and_joins_a_traceback(tmp_path, gpuwatch_cmd, subprocess_env):
    log = tmp_path / "train.log"
    log.write_text("2025-01-01 12:00:00,001 - trainer - INFO - epoch 1 started\n"
                   "\n"
                   "2025-01-01 12:00:05,002 - trainer - ERROR - step 7 failed\n"
                   "Traceback (most recent call last):\n"
                   '  File "/opt/train.py", line 12, in step\n'
                   "    loss.backward()\n"
                   "RuntimeError: CUDA error: an illegal memory access was encountered\n"
                   "2025-01-01 12:00:09,003 - trainer - INFO - epoch 2 started\n")
    proc = run(gpuwatch_cmd, subprocess_env, str(log), "--assign")
    assert proc.returncode == 0, proc.stderr
    out = assignments(proc)
    assert [n for n, _, _ in out] == list(range(1, 9))
    assert out[1] == (2, 0, "")  # the blank line: numbered, no template
    assert out[0][1] == out[7][1] and out[0][2] == "epoch <*> started"  # header not mined
    traceback = {tid for _, tid, _ in out[2:7]}
    assert len(traceback) == 1 and out[2][2].startswith("step <*> failed Traceback")


def test_json_ids_are_exact_for_json_readers(tmp_path, gpuwatch_cmd, subprocess_env):
    log = tmp_path / "a.log"
    log.write_text("".join(f"request {i} from host-{i % 7} took {i} ms\n" for i in range(50)))
    proc = run(gpuwatch_cmd, subprocess_env, str(log), "--assign", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = [orjson.loads(r) for r in proc.stdout.splitlines()]
    assert [r["line"] for r in rows] == list(range(1, 51))
    assert all(0 < r["template_id"] < 2 ** 53 and r["template"] for r in rows)


def test_headers_are_not_mined(tmp_path, gpuwatch_cmd, subprocess_env):
    """One event on different weekdays, hosts and pids is one template (issue 14)."""
    log = tmp_path / "messages"
    log.write_text("Jun 14 15:16:01 combo sshd(pam_unix)[19939]: check pass; user unknown\n"
                   "Jul  2 01:02:03 node-7 sshd(pam_unix)[2]: check pass; user unknown\n"
                   "[Sun Dec 04 04:47:44 2005] [notice] check pass; user unknown\n"
                   "[Mon Dec 05 14:47:44 2005] [error] check pass; user unknown\n")
    out = assignments(run(gpuwatch_cmd, subprocess_env, str(log), "--assign"))
    assert len({tid for _, tid, _ in out}) == 1 and out[0][2] == "check pass; user unknown"


def test_stdin_works(gpuwatch_cmd, subprocess_env):
    proc = run(gpuwatch_cmd, subprocess_env, "-", "--assign", stdin=b"a 1\n\nb c\n")
    assert proc.returncode == 0, proc.stderr
    assert [n for n, _, _ in assignments(proc)] == [1, 2, 3]


def test_a_missing_file_is_a_usage_error(tmp_path, gpuwatch_cmd, subprocess_env):
    proc = run(gpuwatch_cmd, subprocess_env, str(tmp_path / "nope.log"))
    assert proc.returncode == 2 and b"no such file" in proc.stderr


def test_a_directory_is_named_as_a_directory(tmp_path, gpuwatch_cmd, subprocess_env):
    proc = run(gpuwatch_cmd, subprocess_env, str(tmp_path))
    assert proc.returncode == 2
    assert b"is a directory" in proc.stderr and b"no such file" not in proc.stderr


def test_an_unwritable_state_path_fails_in_one_line_before_mining(tmp_path, gpuwatch_cmd, subprocess_env):
    log = tmp_path / "a.log"
    log.write_text("hello 1\n")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    for state in (blocker / "state.json", tmp_path):
        proc = run(gpuwatch_cmd, subprocess_env, str(log), "--state", str(state))
        assert proc.returncode == 2, proc.stderr
        err = proc.stderr.decode().strip()
        assert "--state" in err and "Traceback" not in err and len(err.splitlines()) == 1
        assert proc.stdout == b""


def test_state_is_saved_and_reused(tmp_path, gpuwatch_cmd, subprocess_env):
    log = tmp_path / "a.log"
    log.write_text("worker is ready on alpha\nworker is ready on beta\n")
    state = tmp_path / "sub" / "miner.json"
    assert run(gpuwatch_cmd, subprocess_env, str(log), "--state", str(state)).returncode == 0
    assert state.exists() and os.path.getsize(state) > 0
    again = TemplateMiner(state)
    assert again.mine("worker is ready on gamma").change == "none"


def test_a_bad_format_regex_is_a_usage_error(tmp_path, gpuwatch_cmd, subprocess_env):
    log = tmp_path / "a.log"
    log.write_text("x\n")
    proc = run(gpuwatch_cmd, subprocess_env, str(log), "--format", r"(?P<ts>\S+) .*")
    assert proc.returncode == 2 and b"msg" in proc.stderr
    proc = run(gpuwatch_cmd, subprocess_env, str(log), "--format", r"(?P<ts>\S+) (?P<msg>.*)", "--assign")
    assert proc.returncode == 0, proc.stderr


def test_a_state_path_holding_someone_elses_file_is_refused_not_moved(tmp_path, gpuwatch_cmd, subprocess_env):
    """It was "moved to FILE.corrupt and starting fresh", and a new state written in its place."""
    log = tmp_path / "a.log"
    log.write_text("hello 1\n")
    theirs = tmp_path / "settings.json"
    theirs.write_text('{"a": 1}')
    proc = run(gpuwatch_cmd, subprocess_env, str(log), "--state", str(theirs))
    assert proc.returncode == 2 and b"not a template-miner state file" in proc.stderr, proc.stderr
    assert theirs.read_text() == '{"a": 1}' and not (tmp_path / "settings.json.corrupt").exists()


def test_a_binary_file_an_empty_name_and_an_unknown_format_name_say_so(tmp_path, gpuwatch_cmd, subprocess_env):
    blob = tmp_path / "core.bin"
    blob.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 8)
    proc = run(gpuwatch_cmd, subprocess_env, str(blob))
    assert proc.returncode == 2 and b"looks binary" in proc.stderr
    proc = run(gpuwatch_cmd, subprocess_env, "")
    assert proc.returncode == 2 and b"no log file given" in proc.stderr
    log = tmp_path / "a.log"
    log.write_text("x\n")
    proc = run(gpuwatch_cmd, subprocess_env, str(log), "--format", "nosuchname")
    assert proc.returncode == 2 and b"unknown line format 'nosuchname'; built-in: " in proc.stderr
