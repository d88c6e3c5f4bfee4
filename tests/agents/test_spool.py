"""The bounded on-disk spool: order, restart, the bound (oldest dropped and counted), torn writes."""

from __future__ import annotations

import logging

from agents.spool import Spool


def _drain(s: Spool) -> list[bytes]:
    out = []
    while s.messages:
        recs, token = s.peek(7)
        out += [r[2] for r in recs]
        s.commit(token)
    return out


def test_fifo_order_across_segments_and_partial_commits(tmp_path):
    s = Spool(tmp_path, max_bytes=10 * 2**20, segment_bytes=4096)
    values = [f"m{i:05d}".encode() * 20 for i in range(500)]
    for i, v in enumerate(values):
        s.append("topic-a" if i % 2 else "topic-b", f"node-{i % 3}", v)
    assert s.messages == 500 and len(list(tmp_path.glob("*.seg"))) > 5
    recs, token = s.peek(3)
    assert [r[0] for r in recs] == ["topic-b", "topic-a", "topic-b"] and recs[1][1] == b"node-1"
    assert _drain(s) == values
    assert s.messages == 0 and s.bytes == 0 and list(tmp_path.glob("*.seg")) == []


def test_unsent_messages_survive_a_restart_and_committed_ones_do_not(tmp_path):
    s = Spool(tmp_path, segment_bytes=2048)
    for i in range(100):
        s.append("t", b"k", f"v{i}".encode() * 10)
    recs, token = s.peek(30)
    s.commit(token)
    s.close()
    s2 = Spool(tmp_path, segment_bytes=2048)
    assert s2.messages == 70
    assert _drain(s2) == [f"v{i}".encode() * 10 for i in range(30, 100)]
    s2.append("t", b"k", b"after")
    assert _drain(s2) == [b"after"]


def test_past_the_bound_the_oldest_are_dropped_counted_and_logged(tmp_path, caplog):
    record = 12 + 1 + 1 + 100  # header + topic + key + value
    s = Spool(tmp_path, max_bytes=50 * record, segment_bytes=10 * record)
    with caplog.at_level(logging.WARNING, logger="gpuwatch.agent.spool"):
        for i in range(80):
            s.append("t", b"k", f"{i:03d}".encode() + b"x" * 97)
    assert s.dropped == 30 and s.messages == 50 and s.appended == 80
    assert s.bytes <= 50 * record
    kept = _drain(s)
    assert [int(v[:3]) for v in kept] == list(range(30, 80))  # the newest 50, in order
    assert any("dropped the" in r.getMessage() and "oldest" in r.getMessage() for r in caplog.records)


def test_nothing_is_dropped_up_to_the_bound(tmp_path):
    s = Spool(tmp_path, max_bytes=100_000, segment_bytes=8192)
    n = 0
    while s.bytes + 12 + 2 + 500 <= 100_000:
        s.append("t", b"k", b"y" * 500)
        n += 1
    assert s.dropped == 0 and len(_drain(s)) == n


def test_a_torn_record_at_the_end_is_skipped_not_fatal(tmp_path):
    s = Spool(tmp_path, segment_bytes=1 << 20)
    for i in range(5):
        s.append("t", b"k", f"ok{i}".encode())
    s.close()
    seg = next(tmp_path.glob("*.seg"))
    with open(seg, "ab") as f:
        f.write(b"\x00\x00\x00\x10\x00\x01")  # half a header: the process died mid-write
    s2 = Spool(tmp_path, segment_bytes=1 << 20)
    assert s2.messages == 5
    s2.append("t", b"k", b"new")  # must not land behind the torn bytes, where it could never be read
    assert _drain(s2) == [f"ok{i}".encode() for i in range(5)] + [b"new"]
    assert s2.corrupt >= 1
