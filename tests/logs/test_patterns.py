"""Critical log patterns: each one from real-looking lines, the XID catalog, cooldowns, site files."""

from __future__ import annotations

import time

import pytest

from pipelines.logs.patterns import PatternBook, PatternError
from schemas.events import NodeEvent

NOW = time.time()

# (line, pattern, severity, action, code, gpu, pci)
CASES = [
    ("[rank3]:[E ProcessGroupNCCL.cpp:563] [Rank 3] Watchdog caught collective operation timeout: "
     "WorkNCCL(SeqNum=12345, OpType=ALLREDUCE, NumelIn=1048576, NumelOut=1048576, Timeout(ms)=600000) ran for "
     "600023 milliseconds before timing out.", "nccl_watchdog_timeout", "critical", "check_job", 0, -1, ""),
    ("torch.distributed.DistBackendError: NCCL error in: ../torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp:1275, "
     "unhandled system error (run with NCCL_DEBUG=INFO for details), NCCL version 2.18.1",
     "nccl_unhandled_system_error", "critical", "inspect_hw", 0, -1, ""),
    ("ncclRemoteError: A call failed possibly due to a network error or a remote process exiting prematurely.",
     "nccl_remote_process_exited", "critical", "check_job", 0, -1, ""),
    ("NCCL error: remote process exited or there was a network error, NCCL version 2.19.3",
     "nccl_remote_process_exited", "critical", "check_job", 0, -1, ""),
    ("RuntimeError: NCCL Error 1: unhandled cuda error (run with NCCL_DEBUG=INFO for details)",
     "nccl_unhandled_cuda_error", "critical", "check_job", 0, -1, ""),
    ("gpu-node-7:1234:5678 [0] NCCL WARN NET/IB : Got completion from peer 10.0.0.3<52310> with error 12",
     "nccl_error", "warning", "check_job", 0, -1, ""),
    ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 3 has a total capacity of "
     "79.15 GiB of which 1.06 GiB is free.", "cuda_out_of_memory", "warning", "check_job", 0, 3, ""),
    ("RuntimeError: CUDA error: an illegal memory access was encountered",
     "cuda_illegal_memory_access", "critical", "restart_app", 0, -1, ""),
    ("RuntimeError: CUDA error: uncorrectable ECC error encountered",
     "ecc_uncorrectable", "critical", "reset_gpu", 48, -1, ""),
    ("GPU 0000:3b:00.0: row remapping failure detected, GPU needs to be replaced",
     "ecc_row_remap_failure", "critical", "inspect_hw", 64, -1, ""),
    ("dcgm: GPU 2 single-bit ECC errors exceeded threshold (1024 in 24h)",
     "ecc_corrected_excessive", "warning", "inspect_hw", 92, -1, ""),
    ("[  123.456] NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python, GPU has fallen off the bus.",
     "xid_in_app_log", "critical", "reboot", 79, -1, "0000:3b:00"),
    ("NVRM: Xid (PCI:0000:ca:00): 13, pid='<unknown>', name=<unknown>, Graphics Exception: ESR 0x404600=0x80000002",
     "xid_in_app_log", "warning", "restart_app", 13, -1, "0000:ca:00"),
    ("NVRM: GPU 2 has fallen off the bus.", "gpu_fallen_off_bus", "critical", "reboot", 79, 2, ""),
    ("python[23456]: segfault at 0 ip 00007f1c2a3b4c5d sp 00007ffd1e2f3a40 error 4 in libc.so.6[7f1c2a200000+195000]",
     "segfault", "critical", "check_job", 0, -1, ""),
    ("Fatal Python error: Segmentation fault", "segfault", "critical", "check_job", 0, -1, ""),
    ("Out of memory: Killed process 34567 (python) total-vm:123456789kB, anon-rss:98765432kB, file-rss:0kB",
     "kernel_oom_killer", "critical", "check_job", 0, -1, ""),
    ("python invoked oom-killer: gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0",
     "kernel_oom_killer", "critical", "check_job", 0, -1, ""),
    ("INFO: task python:12345 blocked for more than 120 seconds.", "hung_task", "warning", "inspect_hw", 0, -1, ""),
]


@pytest.fixture
def book() -> PatternBook:
    return PatternBook.load(extra_files=[])


@pytest.mark.parametrize("line, name, severity, action, code, gpu, pci", CASES, ids=[c[1] for c in CASES])
def test_each_critical_pattern_becomes_a_node_event(book, line, name, severity, action, code, gpu, pci):
    ev = book.match("gpu-node-7", NOW, line, source="/var/log/train.log", labels={"job": "llm-70b"})
    assert ev is not None, f"{name} did not match"
    assert ev.labels["pattern"] == name
    assert (ev.severity, ev.action, ev.code, ev.gpu, ev.pci_bus_id) == (severity, action, code, gpu, pci)
    assert ev.source == "log" and ev.message == line and ev.labels["job"] == "llm-70b"
    assert isinstance(ev, NodeEvent)  # a valid wire event, recorded as it is


def test_every_builtin_pattern_has_a_case(book):
    assert set(book.names()) == {c[1] for c in CASES}


@pytest.mark.parametrize("line", [
    "step 100 loss 2.31 lr 3e-4",
    "NCCL INFO Channel 00/0 : 0[0] -> 1[1] via P2P/IPC/read",
    "Using watchdog-free mode",                       # has a pre-check word, no pattern match
    "memory usage 12 GiB out of 80",
    "ECC mode: enabled",
])
def test_ordinary_lines_do_not_match(book, line):
    assert book.match("n1", NOW, line) is None


def test_xid_lines_take_severity_and_action_from_the_shared_catalog(book):
    from schemas.xid import lookup

    ev = book.match("n1", NOW, "NVRM: Xid (PCI:0000:3b:00): 48, pid=77, name=python, DBE (double bit error)")
    info = lookup(48)
    assert (ev.severity, ev.action) == (info.severity, info.action)
    assert info.meaning in ev.title


def test_a_flood_of_one_error_is_one_event_per_cooldown(book):
    line = "RuntimeError: CUDA error: an illegal memory access was encountered"
    events = [book.match("n1", NOW - 100 + i, line) for i in range(100)]
    assert sum(e is not None for e in events) == 2  # cooldown 60 s over 100 s
    assert book.suppressed == 98
    assert book.match("n2", NOW, line) is not None, "another node is not held back by n1's cooldown"


def test_a_site_file_adds_and_overrides_patterns(tmp_path):
    site = tmp_path / "site.yaml"
    site.write_text("""
patterns:
  - name: lustre_eviction
    title: Lustre client evicted
    contains: [evicted]
    regex: 'LustreError: .* evicted'
    severity: critical
    action: drain_node
  - name: hung_task
    title: Hung task (site policy)
    contains: [blocked for more than]
    regex: 'blocked for more than \\d+ seconds'
    severity: critical
    action: reboot
""")
    book = PatternBook.load(extra_files=[site])
    ev = book.match("n1", NOW, "LustreError: 11-0: scratch-OST0003: client was evicted by the server")
    assert (ev.labels["pattern"], ev.action) == ("lustre_eviction", "drain_node")
    ev = book.match("n1", NOW, "INFO: task kworker:1 blocked for more than 240 seconds.")
    assert (ev.severity, ev.action) == ("critical", "reboot")


def test_site_patterns_come_from_the_environment(tmp_path, monkeypatch):
    site = tmp_path / "p.yaml"
    site.write_text("patterns:\n  - {name: mine, title: Mine, contains: [boom], regex: 'boom', severity: info}\n")
    monkeypatch.setenv("GPUWATCH_LOG_PATTERNS", str(site))
    assert "mine" in PatternBook.load().names()


@pytest.mark.parametrize("body, message", [
    ("patterns:\n  - {name: bad, title: Bad, contains: [x], regex: '(unclosed'}\n", "'bad': regex"),
    ("patterns:\n  - {name: bad, title: Bad, contains: [xid79], regex: 'x'}\n", "no digits"),
    ("patterns:\n  - {name: bad, title: Bad, contains: [x], regex: 'x', severity: fatal}\n", "severity"),
    ("nothing: here\n", "top-level 'patterns:' list"),
])
def test_a_broken_site_file_says_what_is_wrong(tmp_path, body, message):
    site = tmp_path / "bad.yaml"
    site.write_text(body)
    with pytest.raises(PatternError, match=message.replace("(", r"\(")):
        PatternBook.load(extra_files=[site])
