"""Log tailing: rotation (rename and copytruncate), resume from saved offsets, multi-line records."""

from __future__ import annotations

import os
import time

from agents.collectors.base import NodeContext
from agents.collectors.logfiles import LogFilesCollector, LogFilesConfig, MultilineJoiner, level_of
from schemas.codec import decode, encode_dict
from schemas.logs import LogBatch


def _collector(tmp_path, **cfg) -> LogFilesCollector:
    ctx = NodeContext(node="n1", state_dir=tmp_path / "state")
    c = LogFilesCollector(LogFilesConfig(enabled=True, multiline_timeout_s=0, **cfg), ctx)
    c.start()
    return c


def _messages(c: LogFilesCollector) -> list[str]:
    recs = c.logs(time.time())
    if recs:
        decode(encode_dict({"v": 1, "kind": "logs", "node": "n1", "records": recs}), LogBatch)
    return [r["message"] for r in recs]


def _append(path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


def test_existing_files_start_at_their_end_and_new_lines_are_read(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("old history\n")
    c = _collector(tmp_path, paths=[str(tmp_path / "*.log")])
    assert _messages(c) == []
    _append(log, "step 1\nstep 2\n")
    assert _messages(c) == ["step 1", "step 2"]


def test_rename_rotation_loses_nothing(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("")
    c = _collector(tmp_path, paths=[str(log)])
    _append(log, "a1\na2\n")
    assert _messages(c) == ["a1", "a2"]
    _append(log, "a3\n")               # written, then rotated before the next read
    os.rename(log, tmp_path / "app.log.1")
    _append(tmp_path / "app.log.1", "a4\n")  # a late write to the old file by the still-open writer
    log.write_text("b1\n")
    assert _messages(c) == ["a3", "a4", "b1"]
    _append(log, "b2\n")
    assert _messages(c) == ["b2"]
    assert c.stats()["rotations"] >= 1


def test_copytruncate_rotation_restarts_at_zero(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("")
    c = _collector(tmp_path, paths=[str(log)])
    _append(log, "x" * 50 + "\n")
    assert len(_messages(c)) == 1
    with open(log, "w"):
        pass  # truncated in place
    _append(log, "after truncate\n")
    assert _messages(c) == ["after truncate"]


def test_restart_resumes_from_saved_offsets(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("")
    c = _collector(tmp_path, paths=[str(log)])
    _append(log, "one\ntwo\n")
    assert _messages(c) == ["one", "two"]
    c.close()
    _append(log, "three\nfour\n")  # written while the agent was down
    c2 = _collector(tmp_path, paths=[str(log)])
    assert _messages(c2) == ["three", "four"]


def test_restart_after_a_rotation_while_down_drains_the_rotated_file_first(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("")
    c = _collector(tmp_path, paths=[str(log)])
    _append(log, "one\n")
    assert _messages(c) == ["one"]
    c.close()
    _append(log, "two\n")
    os.rename(log, tmp_path / "app.log.1")
    log.write_text("three\n")
    c2 = _collector(tmp_path, paths=[str(log)])
    assert _messages(c2) == ["two", "three"]


def test_new_files_matching_a_glob_are_read_from_their_start(tmp_path):
    c = _collector(tmp_path, paths=[str(tmp_path / "job-*.log")], rescan_s=0.01)
    assert _messages(c) == []
    (tmp_path / "job-7.log").write_text("hello from job 7\n")
    time.sleep(0.02)
    assert _messages(c) == ["hello from job 7"]


def test_python_traceback_is_one_error_record(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("")
    c = _collector(tmp_path, paths=[str(log)])
    _append(log, "2024-05-01 10:00:00 INFO step 10 loss 2.1\n"
                 "2024-05-01 10:00:00 ERROR step 11 failed\n"   # logger.exception(): message, then traceback
                 "Traceback (most recent call last):\n"
                 '  File "train.py", line 42, in <module>\n'
                 "    main()\n"
                 '  File "train.py", line 30, in main\n'
                 "    loss.backward()\n"
                 "RuntimeError: CUDA error: an illegal memory access was encountered\n"
                 "2024-05-01 10:00:01 WARNING restarting\n")
    msgs = _messages(c)
    assert len(msgs) == 3
    assert msgs[1].startswith("2024-05-01 10:00:00 ERROR step 11 failed\nTraceback")
    assert msgs[1].endswith("illegal memory access was encountered") and msgs[1].count("\n") == 6
    recs_levels = [level_of(m) for m in msgs]
    assert recs_levels == ["INFO", "ERROR", "WARNING"]


def test_chained_tracebacks_and_a_record_split_across_reads_stay_whole(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("")
    c = LogFilesCollector(LogFilesConfig(enabled=True, paths=[str(log)], multiline_timeout_s=30),
                          NodeContext(node="n1", state_dir=tmp_path / "s"))
    c.start()
    _append(log, "Traceback (most recent call last):\n  File \"a.py\", line 1\nKeyError: 'x'\n")
    assert c.logs(time.time()) == []  # still open: more may follow
    _append(log, "\nDuring handling of the above exception, another exception occurred:\n\n"
                 "Traceback (most recent call last):\n  File \"a.py\", line 3\nValueError: y\nnext record\n")
    msgs = [r["message"] for r in c.logs(time.time())]
    assert len(msgs) == 1 and "KeyError" in msgs[0] and msgs[0].endswith("ValueError: y")
    c.stopping()
    assert [r["message"] for r in c.logs(time.time())] == ["next record"]  # flushed at shutdown


def test_custom_start_pattern_and_oversized_records_are_truncated_not_dropped(tmp_path):
    log = tmp_path / "x.log"
    log.write_text("")
    c = _collector(tmp_path, paths=[str(log)], start_pattern=r"^\[\d{4}-")
    _append(log, "[2024-01-01] first\ncontinued without indent\n[2024-01-02] second\n" + "y" * 20000 + "\n")
    msgs = _messages(c)
    assert msgs[0] == "[2024-01-01] first\ncontinued without indent"
    assert msgs[1].startswith("[2024-01-02] second\nyyy") and msgs[1].endswith("[truncated]")
    assert c.stats()["truncated"] == 1


def test_joiner_doctest_behaviour():
    j = MultilineJoiner()
    assert j.feed(["a", "  b", "c"]) == ["a\n  b"]
    assert j.flush() == ["c"]


def test_following_a_quiet_file_does_not_allocate_the_whole_read_budget_each_time(tmp_path):
    """A followed file is read every scrape (the kernel log every 10 ms): asking the OS for the full
    4 MiB budget each time allocated 4 MiB per read, which the agent paid in CPU and resident memory."""
    import tracemalloc

    from agents.logtail import FileTail

    p = tmp_path / "kern.log"
    p.write_text("one\n")
    tail = FileTail(str(p), start_at_end=False)
    tracemalloc.start()
    try:
        assert tail.read_lines() == ["one"]
        for _ in range(5):
            assert tail.read_lines() == []
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        tail.close()
    assert peak < 256 * 1024, f"{peak} bytes allocated to read 4 bytes"
