"""XID/SXID parsing and the catalog (schemas.xid) on recorded kernel lines, and the XID collector."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from agents.collectors.base import GpuIdentity, NodeContext
from agents.collectors.xid import XidCollector, XidConfig
from schemas.codec import decode, encode_dict
from schemas.events import NodeEvent
from schemas.xid import CATALOG, classify, lookup, normalize_pci_bus_id, parse_kernel_line

KERNEL = Path(__file__).resolve().parents[1] / "fixtures" / "kernel"

#: NVIDIA's catalog codes that need action, which the issue names explicitly.
REQUIRED = [13, 31, 43, 45, 48, 61, 62, 63, 64, 68, 74, 79, 92, 94, 95, 109, 119, 120, 140, 143,
            144, 145, 146, 147, 148, 149, 150]


@pytest.mark.parametrize("code", REQUIRED)
def test_catalog_covers_every_required_code(code):
    info = lookup(code)
    assert info is not None and info.code == code
    assert info.meaning and info.name
    assert info.severity in ("info", "warning", "critical")
    assert info.action in ("restart_app", "reset_gpu", "reboot", "inspect_hw")


def test_catalog_actions_for_well_known_codes():
    assert (lookup(79).action, lookup(79).severity) == ("reboot", "critical")
    assert lookup(48).action == "reset_gpu" and lookup(95).action == "reset_gpu"
    assert lookup(13).action == "restart_app" and lookup(31).action == "restart_app"
    assert lookup(64).action == "inspect_hw"
    assert lookup(3) is None and lookup(99999) is None
    assert all(k == v.code for k, v in CATALOG.items())


def test_schemas_xid_imports_nothing_from_agents_or_pipelines():
    text = (Path(__file__).resolve().parents[3] / "schemas" / "xid.py").read_text()
    assert "import agents" not in text and "from agents" not in text and "pipelines" not in text


#: (pci, code, pid, source) for each XID/SXID line in the recorded dmesg, in order.
DMESG_EXPECTED = [
    ("0000:01:00", 32, None, "xid"),
    ("0000:ca:00", 13, None, "xid"),
    ("0000:ca:00", 13, None, "xid"),
    ("0000:ca:00", 13, 2871543, "xid"),
    ("0000:ca:00", 43, 2871543, "xid"),
    ("0000:b7:00", 31, 2371, "xid"),
    ("0000:10:1c", 63, 1896, "xid"),
    ("0000:10:1c", 94, 1896, "xid"),
    ("0000:4e:00", 48, None, "xid"),
    ("0000:4e:00", 95, None, "xid"),
    ("0000:c1:00", 74, None, "xid"),
    ("0000:17:00", 119, 30412, "xid"),
    ("0000:9b:00", 154, None, "xid"),
    ("0000:c4:00", 20034, None, "sxid"),
    ("0000:05:00", 12028, None, "sxid"),
    ("0000:3b:00", 79, None, "xid"),   # "GPU at ... has fallen off the bus" (no XID number)
    ("0000:3b:00", 79, 0, "xid"),
    ("0000:01:00", 3, None, "xid"),    # an old driver's format, without "PCI:"
]


def test_recorded_dmesg_lines_parse_exactly():
    got = []
    for line in (KERNEL / "dmesg_mixed.txt").read_text().splitlines():
        p = parse_kernel_line(line)
        if p is not None:
            got.append((p.pci_bus_id, p.code, p.pid, p.source))
    assert got == DMESG_EXPECTED


def test_parsed_text_drops_pid_and_name_prefixes():
    p = parse_kernel_line("[ 3021.0] NVRM: Xid (PCI:0000:b7:00): 31, pid=2371, name=python3, Ch 00000018, intr 1")
    assert p.text == "Ch 00000018, intr 1"
    assert parse_kernel_line("random kernel line") is None
    assert parse_kernel_line("NVRM: Xid is mentioned but not in the format") is None


def test_classification_of_sxid_and_xid_154():
    fatal = parse_kernel_line("nvidia-nvswitch3: SXid (PCI:0000:c4:00.0): 20034, Fatal, Link 44 LTSSM Fault Up")
    nonfatal = parse_kernel_line("nvidia-nvswitch0: SXid (PCI:0000:05:00.0): 12028, Non-fatal, Link 32 egress")
    assert classify(fatal).severity == "critical" and classify(nonfatal).severity == "warning"
    reboot = parse_kernel_line("NVRM: Xid (PCI:0000:9b:00): 154, GPU recovery action changed from 0x0 (None) "
                               "to 0x2 (Node Reboot Required)")
    assert classify(reboot).action == "reboot"
    assert classify(parse_kernel_line("NVRM: Xid (0000:01:00): 3, C 5")) is None


def test_pci_addresses_from_nvml_and_kernel_agree():
    assert normalize_pci_bus_id("00000000:3B:00.0") == normalize_pci_bus_id("PCI:0000:3b:00") == "0000:3b:00"
    assert normalize_pci_bus_id("0000:c4:00.0") == "0000:c4:00"


def _context() -> NodeContext:
    ctx = NodeContext(node="gpu-node-7")
    ctx.set_gpus([GpuIdentity(3, "GPU-33", "H100", "0000:3b:00"), GpuIdentity(5, "GPU-55", "H100", "0000:ca:00")])
    return ctx


def _valid(ev: dict) -> NodeEvent:
    return decode(encode_dict(ev), NodeEvent)


def test_collector_turns_kernel_lines_into_valid_events_with_the_gpu(tmp_path):
    log = tmp_path / "kern.log"
    shutil.copy(KERNEL / "dmesg_mixed.txt", log)
    c = XidCollector(XidConfig(source=str(log)), _context())
    c.start()
    assert c.collect(time.time()) == []  # events, never gauges
    events = [_valid(e) for e in c.events(time.time())]
    assert len(events) == len(DMESG_EXPECTED)
    x79 = [e for e in events if e.code == 79]
    assert {e.gpu for e in x79} == {3} and all(e.action == "reboot" and e.severity == "critical" for e in x79)
    assert all(e.labels["uuid"] == "GPU-33" for e in x79)
    x13 = [e for e in events if e.code == 13]
    assert {e.gpu for e in x13} == {5} and x13[2].labels["pid"] == "2871543"
    unknown_gpu = next(e for e in events if e.code == 74)
    assert unknown_gpu.gpu == -1 and unknown_gpu.pci_bus_id == "0000:c1:00"
    sx = [e for e in events if e.source == "sxid"]
    assert [e.code for e in sx] == [20034, 12028]
    old = next(e for e in events if e.code == 3)
    assert old.severity == "info" and old.action == "none"
    assert c.events(time.time()) == []


def test_collector_caps_a_flood_and_counts_the_rest(tmp_path):
    log = tmp_path / "kern.log"
    line = "NVRM: Xid (PCI:0000:ca:00): 13, pid=1, name=x, Graphics SM Warp Exception\n"
    log.write_text(line * 50)
    c = XidCollector(XidConfig(source=str(log), max_events_per_code=5), _context())
    c.start()
    c.collect(time.time())
    events = c.events(time.time())
    assert len(events) == 5 and events[-1]["message"].endswith("(+45 more like this)")
    assert c.stats() == {"lines": 50, "xids": 50, "sxids": 0, "suppressed": 45}


def test_kmsg_records_resume_after_restart_without_repeats(tmp_path):
    kmsg = tmp_path / "kmsg"
    shutil.copy(KERNEL / "kmsg_records.txt", kmsg)
    ctx = _context()
    ctx.state_dir = tmp_path / "state"
    c = XidCollector(XidConfig(source="kmsg", kmsg_path=kmsg), ctx)
    c.start()
    c.collect(time.time())
    first = [_valid(e) for e in c.events(time.time())]
    assert [(e.code, e.gpu) for e in first] == [(79, 3), (13, -1)]
    assert abs(first[0].ts - time.time()) < 40 * 86400  # kmsg's boot-relative time made absolute
    c.close()
    with open(kmsg, "a") as f:
        f.write("4,1004,8100700000,-;NVRM: Xid (PCI:0000:ca:00): 31, pid=9, name=x, MMU Fault\n")
    c2 = XidCollector(XidConfig(source="kmsg", kmsg_path=kmsg), ctx)
    c2.start()
    c2.collect(time.time())
    assert [e["code"] for e in c2.events(time.time())] == [31]  # only the new record
    c2.close()


def test_auto_source_without_kmsg_or_journal_says_what_to_set(tmp_path, monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    c = XidCollector(XidConfig(kmsg_path=tmp_path / "absent"), _context())
    with pytest.raises(RuntimeError, match="collectors.xid.source"):
        c.start()
