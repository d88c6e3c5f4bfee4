"""Multi-line records (agents/logrecords.py): what the agent and the offline CLI join into one record."""

from __future__ import annotations

from agents.logrecords import MultilineJoiner, join_records
from pipelines.logs.offline import assign_records


def records(lines: list[str]) -> list[str]:
    return [text for _, text in join_records(lines)]


def test_a_logged_exception_and_its_traceback_are_one_record():
    lines = ["2025-01-01 12:00:00,001 - t - ERROR - step 7 failed",
             "Traceback (most recent call last):",
             '  File "/opt/train.py", line 12, in step',
             "    loss.backward()",
             "RuntimeError: CUDA error: an illegal memory access was encountered",
             "",
             "During handling of the above exception, another exception occurred:",
             "",
             "Traceback (most recent call last):",
             '  File "/opt/train.py", line 20, in main',
             "SystemExit: 1",
             "2025-01-01 12:00:01,001 - t - INFO - restarting"]
    out = records(lines)
    assert len(out) == 2 and out[0].count("Traceback") == 2 and out[1].endswith("restarting")


def test_an_uncaught_traceback_after_an_info_line_is_its_own_record():
    lines = ["step 10 loss 2.3", "Traceback (most recent call last):", '  File "x.py", line 1, in <module>',
             "ValueError: bad"]
    assert records(lines) == ["step 10 loss 2.3", "\n".join(lines[1:])]


def test_two_tracebacks_in_a_row_are_two_records_unless_chained():
    """A rank that fails twice writes two tracebacks back to back: two events, not one record holding both
    (only "During handling of the above exception" chains a second traceback to the first)."""
    tb = ["[rank3]: Traceback (most recent call last):", '[rank3]:   File "/opt/train.py", line {n}, in <module>',
          "[rank3]:     dist.all_reduce(t)", "[rank3]: torch.distributed.DistBackendError: NCCL error in: x"]
    lines = [line.format(n=n) for n in (3, 71) for line in tb]
    out = records(lines)
    assert len(out) == 2 and [r.count("Traceback") for r in out] == [1, 1]
    plain = ["Traceback (most recent call last):", '  File "x.py", line 1, in <module>', "ValueError: bad"]
    assert len(records(plain + plain)) == 2


def test_a_pytorch_cpp_exception_dump_is_one_record():
    lines = ["[rank0]:[E ProcessGroupNCCL.cpp:1182] [Rank 0] NCCL watchdog thread terminated with exception: timeout",
             "Exception raised from checkTimeout at ../torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp:525 (most "
             "recent call first):",
             "frame #0: c10::Error::Error(c10::SourceLocation, std::string) + 0x57 (0x7f3c in libc10.so)",
             "frame #1: c10d::ProcessGroupNCCL::WorkNCCL::checkTimeout() + 0x1d2 (0x7f3d in libtorch_cuda.so)",
             "[rank1]:[E ProcessGroupNCCL.cpp:1182] [Rank 1] NCCL watchdog thread terminated with exception: timeout"]
    out = records(lines)
    assert len(out) == 2 and out[0].count("frame #") == 2


def test_a_java_stack_trace_is_one_record():
    lines = ["2015-10-18 18:01:47,978 ERROR [main] org.apache.App: boom", "java.io.IOException: broken pipe",
             "\tat org.apache.App.run(App.java:12)", "Caused by: java.net.SocketException: reset",
             "\t... 3 more", "2015-10-18 18:01:48,000 INFO [main] org.apache.App: next"]
    out = records(lines)
    assert len(out) == 3 and out[1].startswith("java.io.IOException") and out[1].endswith("3 more")


def test_cri_lines_are_joined_on_what_follows_the_prefix():
    lines = ["2025-11-30T12:00:00.1Z stderr F ERROR boom", "2025-11-30T12:00:00.2Z stderr F Traceback (most recent "
             "call last):", '2025-11-30T12:00:00.3Z stderr F   File "x.py", line 1', "2025-11-30T12:00:00.4Z stderr F "
             "ValueError: bad", "2025-11-30T12:00:01.0Z stdout F next"]
    out = records(lines)
    assert len(out) == 2 and out[0].endswith("ValueError: bad") and "stderr F   File" not in out[0]


def test_record_numbers_count_physical_lines_and_skip_blank_records():
    assert list(join_records(["", "a", "  b", "", "c", ""])) == [(2, "a\n  b"), (5, "c")]


def test_a_start_pattern_replaces_the_built_in_rules():
    j = MultilineJoiner(start_pattern=r"^\[\d{4}-")
    assert j.feed(["[2025-01-01] a", "b", "[2025-01-02] c"]) == ["[2025-01-01] a\nb"]
    assert j.flush() == ["[2025-01-02] c"]


def test_one_traceback_event_is_one_template_whatever_the_frame_numbers():
    lines = []
    for i in range(5):
        lines += [f"2025-01-01 12:00:0{i},001 - t - ERROR - step {i} failed", "Traceback (most recent call last):",
                  f'  File "/opt/train.py", line {10 + i}, in step', f"RuntimeError: CUDA out of memory. Tried {i} GiB",
                  f"2025-01-01 12:00:0{i},500 - t - INFO - retrying step {i}"]
    ids = [a.template_id for a in assign_records(lines)]
    assert len(ids) == 10 and len(set(ids[0::2])) == 1 and len(set(ids[1::2])) == 1 and ids[0] != ids[1]
