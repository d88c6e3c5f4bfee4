"""Bad input: oversized lines, invalid UTF-8, floods, and lines that break things."""

from __future__ import annotations

import time

import orjson
import pytest

from pipelines.logs.processor import RATE_LIMIT_SOURCE, LogProcessor
from pipelines.logs.salvage import salvage_log_batch
from schemas.codec import SchemaError
from schemas.logs import MAX_LINE_CHARS, TRUNCATION_MARKER, LogBatch, LogRecord
from tests.logs.conftest import batch

NOW = time.time()


def raw_batch(records: list[dict], node: str = "n1") -> bytes:
    return orjson.dumps({"v": 1, "kind": "logs", "node": node, "records": records})


def test_an_oversized_line_is_truncated_with_the_marker_not_dropped():
    huge = "x" * (MAX_LINE_CHARS * 3)
    s = salvage_log_batch(raw_batch([{"ts": NOW, "message": huge}, {"ts": NOW, "message": "ok"}]))
    assert s.truncated == 1 and len(s.batch.records) == 2
    msg = s.batch.records[0].message
    assert msg.endswith(TRUNCATION_MARKER) and len(msg) == MAX_LINE_CHARS + len(TRUNCATION_MARKER)
    out = LogProcessor().process(s.batch, 0, 0)
    assert out.log_rows[0][4] == msg


def test_the_processor_truncates_lines_the_contract_lets_through():
    # the contract allows MAX + len(marker) characters; the processor cuts anything past MAX
    p = LogProcessor()
    line = "y" * (MAX_LINE_CHARS + 5)
    out = p.process(LogBatch(node="n1", records=[LogRecord(ts=NOW, message=line)]), 0, 0)
    assert out.log_rows[0][4].endswith(TRUNCATION_MARKER) and p.counters["lines_truncated"] == 1


def test_invalid_utf8_is_replaced_not_dropped():
    raw = raw_batch([{"ts": NOW, "message": "GPU 0 says HELLO"}, {"ts": NOW, "message": "fine"}])
    raw = raw.replace(b"HELLO", b"H\xff\xfeLLO")
    with pytest.raises(SchemaError):  # what a strict decode does with it
        from schemas.codec import decode
        decode(raw, LogBatch)
    s = salvage_log_batch(raw)
    assert s.repaired_utf8 and s.batch.records[0].message == "GPU 0 says H\ufffd\ufffdLLO"
    assert len(s.batch.records) == 2


def test_lone_surrogate_escapes_are_replaced():
    raw = raw_batch([{"ts": NOW, "message": "PLACEHOLDER"}]).replace(b"PLACEHOLDER", b"a\\udcffb \\ud83d\\ude00")
    s = salvage_log_batch(raw)
    assert s.batch.records[0].message == "a\ufffdb \U0001F600"


def test_one_bad_record_costs_only_itself():
    s = salvage_log_batch(raw_batch([{"ts": NOW, "message": "good"}, {"ts": 12.0, "message": "ancient"},
                                     {"ts": NOW, "message": 42}, {"ts": NOW, "message": "also good"}]))
    assert [r.message for r in s.batch.records] == ["good", "also good"]
    assert len(s.rejected) == 2 and s.rejected[0].startswith("record 1: ts")


@pytest.mark.parametrize("raw, reason", [
    (None, "empty"), (b"[1,2]", "JSON object"), (b"{nope", "invalid JSON"),
    (raw_batch([{"ts": 12.0, "message": "old"}]), "no usable record"),
    (orjson.dumps({"node": "n1", "records": []}), "non-empty"),
    (orjson.dumps({"node": "bad node id!", "records": [{"ts": NOW, "message": "x"}]}), "node"),
])
def test_unusable_batches_are_refused_with_a_reason(raw, reason):
    with pytest.raises(SchemaError, match=reason):
        salvage_log_batch(raw)


def test_a_flood_from_one_node_is_limited_counted_and_does_not_starve_others():
    p = LogProcessor(lines_per_s=100, burst_lines=1_000)
    flood = p.process(batch("loud", "retrying connection to 10.0.0.1:443", NOW - 60, n=20_000), 0, 1)
    assert flood.dropped == 19_000 and p.counters["lines_dropped_rate_limit"] == 19_000
    summary = [r for r in flood.log_rows if r[2] == RATE_LIMIT_SOURCE]
    assert len(summary) == 1 and "19000" in summary[0][4]
    assert len(flood.log_rows) == 1_000 + 1
    quiet = p.process(batch("quiet", [f"step {i}" for i in range(500)], NOW - 59), 0, 2)
    assert quiet.dropped == 0 and len(quiet.log_rows) == 500
    # the loud node gets its sustained rate back as event time passes
    again = p.process(batch("loud", "retrying connection", NOW - 50, n=2_000), 0, 3)
    assert again.dropped == 2_000 - 1_000


def test_critical_lines_inside_a_flood_still_raise_events():
    p = LogProcessor(lines_per_s=10, burst_lines=100)
    lines = ["noise line"] * 5_000 + ["RuntimeError: CUDA error: an illegal memory access was encountered"]
    out = p.process(batch("n1", lines, NOW), 0, 0)
    assert out.dropped == 4_901
    assert [e.labels["pattern"] for e in out.events] == ["cuda_illegal_memory_access"]


def test_nothing_crashes_the_processor():
    p = LogProcessor()
    good = LogRecord(ts=NOW, message="fine 1")
    broken = LogRecord.model_construct(ts=NOW, message=None, level=None, source="", labels={})
    weird = LogRecord.model_construct(ts=NOW, message="ok 2", level="info", source="", labels=None)
    out = p.process(LogBatch.model_construct(node="n1", records=[good, broken, weird]), 0, 0)
    assert [r[4] for r in out.log_rows] == ["fine 1", "ok 2"]
    assert p.counters["errors"] == 1
    # a whole batch that is not a batch at all
    assert p.process(LogBatch.model_construct(node="n1", records=None), 0, 1).log_rows == []
    assert p.counters["errors"] == 2
    # and it keeps working afterwards
    assert len(p.process(batch("n1", "fine 3", NOW), 0, 2).log_rows) == 1


def test_control_characters_and_empty_lines_are_stored_as_they_are():
    p = LogProcessor()
    out = p.process(batch("n1", ["", "\x00\x1b[31mred\x1b[0m", "\t"], NOW), 0, 0)
    assert [r[4] for r in out.log_rows] == ["", "\x00\x1b[31mred\x1b[0m", "\t"]


RECORD_CASES = [
    {"ts": NOW, "message": "ok"},
    {"ts": NOW, "message": "ok", "level": "WARN", "source": "/var/log/a.log", "labels": {"job": "j1"}, "extra": 1},
    {"ts": int(NOW), "message": "an int timestamp"},
    {"ts": str(NOW), "message": "a string timestamp"},
    {"ts": NOW, "message": 42},
    {"ts": NOW},
    {"message": "no ts"},
    {"ts": 12.0, "message": "ancient"},
    {"ts": NOW + 3600, "message": "from the future"},
    {"ts": NOW, "message": "x" * (MAX_LINE_CHARS + len(TRUNCATION_MARKER) + 1)},
    {"ts": NOW, "message": "ok", "level": "x" * 17},
    {"ts": NOW, "message": "ok", "source": "s" * 513},
    {"ts": NOW, "message": "ok", "labels": {"bad key!": "v"}},
    {"ts": NOW, "message": "ok", "labels": {"k": 1}},
    {"ts": NOW, "message": "ok", "labels": {f"k{i}": "v" for i in range(33)}},
    {"ts": NOW, "message": "ok", "labels": {"k": "v" * 257}},
    {"ts": True, "message": "a bool timestamp"},
    {"ts": NOW, "message": "ok", "level": None},
]


@pytest.mark.parametrize("record", RECORD_CASES)
def test_the_decoder_accepts_and_refuses_what_the_contract_does(record):
    """salvage decodes records into slots, not LogRecord models: it must keep the contract's rules exactly."""
    from pydantic import ValidationError

    from pipelines.logs.salvage import _trim  # what salvage repairs (over-long text) before validating

    raw = raw_batch([record, {"ts": NOW, "message": "the good one"}])
    try:
        expected = LogRecord.model_validate_json(orjson.dumps(_trim(record)[0]))
    except ValidationError:
        expected = None
    s = salvage_log_batch(raw)
    if expected is None:
        assert [r.message for r in s.batch.records] == ["the good one"] and len(s.rejected) == 1
    else:
        got = s.batch.records[0]
        assert {f: getattr(got, f) for f in LogRecord.model_fields} == expected.model_dump()
        assert not s.rejected


def test_decoded_records_have_the_contracts_fields():
    from pipelines.logs.salvage import DecodedBatch, DecodedRecord

    assert set(DecodedRecord.__dataclass_fields__) == set(LogRecord.model_fields)
    assert set(DecodedBatch.__dataclass_fields__) == set(LogBatch.model_fields)
