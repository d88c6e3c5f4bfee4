"""The wire contract: good messages round-trip, bad ones are refused with a readable reason."""

from __future__ import annotations

import time

import orjson
import pytest

from schemas import AlertEvent, MetricBatch, NodeEvent, SchemaError, alert_fingerprint, decode, encode
from schemas.logs import LogBatch


def batch(**over) -> dict:
    b = {"v": 1, "kind": "metrics", "node": "node-1", "ts": time.time(),
         "samples": [{"gpu": 0, "uuid": "GPU-a", "metric": "gpu_temp_c", "value": 61.5, "unit": "C",
                      "labels": {"job": "llm", "pod": "llm-0"}}]}
    b.update(over)
    return b


def test_metric_batch_round_trips_through_orjson():
    raw = orjson.dumps(batch())
    model = decode(raw, MetricBatch)
    assert decode(encode(model), MetricBatch) == model
    assert model.samples[0].labels == {"job": "llm", "pod": "llm-0"}


@pytest.mark.parametrize("payload, reason", [
    (b"[1, 2]", "expected a JSON object"),
    (b'{"v": 1', "invalid JSON"),
    (orjson.dumps(batch(samples=[])), "samples: List should have at least 1 item"),
    (orjson.dumps(batch(node="bad node!")), "node: String should match pattern"),
    (orjson.dumps(batch(samples=[{"gpu": 0, "metric": "m", "value": "61"}])), "valid number"),
    (orjson.dumps(batch(samples=[{"gpu": "0", "metric": "m", "value": 1.0}])), "valid integer"),
    (orjson.dumps(batch(ts=time.time() + 3600)), "in the future"),
    (orjson.dumps(batch(ts=1.0)), "older than 30 days"),
    (orjson.dumps(batch(v=2)), "v: Input should be 1"),
    (orjson.dumps(batch(samples=[{"gpu": 0, "metric": "m", "value": 1.0}] * 2)), "appears twice"),
])
def test_bad_batches_are_refused_with_a_reason(payload, reason):
    with pytest.raises(SchemaError) as e:
        decode(payload, MetricBatch)
    assert reason in str(e.value)


def test_oversized_payloads_are_refused_before_parsing():
    with pytest.raises(SchemaError, match="over the 1024-byte limit"):
        decode(b"{" + b" " * 2000 + b"}", MetricBatch, max_bytes=1024)


def test_fingerprint_ignores_label_order_but_not_values():
    a = alert_fingerprint({"alertname": "GpuHot", "node": "n1", "gpu": "3"})
    assert a == alert_fingerprint({"gpu": "3", "alertname": "GpuHot", "node": "n1"})
    assert a != alert_fingerprint({"alertname": "GpuHot", "node": "n1", "gpu": "4"})


def test_alert_event_requires_a_fingerprint_shape_and_knows_its_event_id():
    ev = AlertEvent(fingerprint="0123456789abcdef", status="firing", alertname="GpuHot", labels={"node": "n"},
                    starts_at=10.0, event_ts=10.0)
    assert ev.event_id == "0123456789abcdef:firing:10.000"
    with pytest.raises(Exception):
        AlertEvent(fingerprint="nothex", status="firing", alertname="x", labels={}, starts_at=1.0, event_ts=1.0)


def test_node_event_and_log_batch_validate():
    now = time.time()
    ev = decode(orjson.dumps({"node": "n1", "ts": now, "source": "xid", "code": 79, "gpu": 2,
                              "severity": "critical", "action": "reboot"}), NodeEvent)
    assert (ev.code, ev.action) == (79, "reboot")
    with pytest.raises(SchemaError, match="action"):
        decode(orjson.dumps({"node": "n1", "ts": now, "action": "pray"}), NodeEvent)
    logs = decode(orjson.dumps({"node": "n1", "records": [{"ts": now, "message": "hello"}]}), LogBatch)
    assert logs.records[0].message == "hello"


def test_one_metric_may_carry_several_series_told_apart_by_labels():
    per_process = [{"gpu": 0, "metric": "process_fb_used_bytes", "value": v, "labels": {"pid": str(pid)}}
                   for pid, v in ((101, 1e9), (202, 2e9))]
    assert len(decode(orjson.dumps(batch(samples=per_process)), MetricBatch).samples) == 2
