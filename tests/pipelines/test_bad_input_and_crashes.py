"""Bad input goes to the dead-letter topic with reasons; a SIGKILLed worker loses and duplicates nothing."""

from __future__ import annotations

import threading
import time
from collections import Counter

import orjson
import pytest
from confluent_kafka import Consumer, Producer

from tests.stack import wait_for

pytestmark = pytest.mark.integration


def _good_batch(i: int, now: float) -> bytes:
    return orjson.dumps({"v": 1, "kind": "metrics", "node": f"good-{i}", "ts": now, "seq": i,
                         "samples": [{"gpu": g, "uuid": f"GPU-{g}", "metric": "gpu_temp_c", "value": 40.0 + g,
                                      "unit": "C"} for g in range(3)]})


def _bad_messages(now: float) -> list[tuple[str, bytes]]:
    sample = {"gpu": 0, "metric": "gpu_temp_c", "value": 50.0}
    base = {"v": 1, "kind": "metrics", "node": "bad", "ts": now}
    kinds = {
        "invalid_json": lambda i: b'{"v": 1, "node": "bad", "samples": [' + str(i).encode(),
        "wrong_type": lambda i: orjson.dumps({**base, "samples": [{**sample, "value": f"hot-{i}"}]}),
        "infinite": lambda i: orjson.dumps(base)[:-1] + b', "samples": [{"gpu": 0, "metric": "m", "value": 1e999}]}',
        "oversized": lambda i: orjson.dumps({**base, "samples": [sample], "pad": "x" * 1_100_000}),
        "future_ts": lambda i: orjson.dumps({**base, "ts": now + 86_400 + i, "samples": [sample]}),
    }
    return [(kind, make(i)) for i in range(200) for kind, make in kinds.items()]


def _drain(bootstrap: str, topic: str, expect: int, timeout: float = 90) -> list[dict]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"drain-{topic}", "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    out: list[dict] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < expect and time.monotonic() < deadline:
            for m in c.consume(500, 1.0):
                if not m.error():
                    out.append(orjson.loads(m.value()))
        end = time.monotonic() + 3  # anything beyond `expect` would show up now
        while time.monotonic() < end:
            out.extend(orjson.loads(m.value()) for m in c.consume(500, 0.5) if not m.error())
    finally:
        c.close()
    return out


def test_malformed_messages_are_dead_lettered_and_good_ones_interleaved_are_stored(stack, bootstrap):
    pipeline = stack.start_pipeline()
    now = time.time()
    bad = _bad_messages(now)
    assert len(bad) == 1000
    p = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 3_000_000})
    topic = stack.topic("gpuwatch.metrics.v1")
    good = 0
    for i, (_, payload) in enumerate(bad):
        p.produce(topic, payload, key=b"bad")
        if i % 2 == 0:
            p.produce(topic, _good_batch(good, now), key=f"good-{good}".encode())
            good += 1
        p.poll(0)
    assert p.flush(60) == 0

    letters = _drain(bootstrap, stack.topic("gpuwatch.deadletter.v1"), 1000)
    assert len(letters) == 1000
    assert all(letter["reason"] and letter["topic"] == topic for letter in letters)
    kinds = Counter()
    for letter in letters:
        r = letter["reason"]
        kinds["invalid_json" if "invalid JSON: unexpected end" in r or "EOF" in r
              else "infinite" if "infinity" in r
              else "oversized" if "over the 1048576-byte limit" in r
              else "future_ts" if "in the future" in r
              else "wrong_type" if "valid number" in r
              else r] += 1
    assert kinds == {"invalid_json": 200, "wrong_type": 200, "infinite": 200, "oversized": 200, "future_ts": 200}

    wait_for(lambda: stack.scalar("SELECT count() FROM gpuwatch.metrics_raw WHERE node LIKE 'good-%'") == good * 3,
             60, what="every good sample stored")
    assert pipeline.popen.poll() is None, "the pipeline must survive bad input"
    assert stack.scalar("SELECT count() FROM gpuwatch.metrics_raw WHERE node = 'bad'") == 0


def test_sigkill_mid_stream_then_restart_loses_and_duplicates_nothing(stack):
    first = stack.start_pipeline()
    result: dict = {}
    publisher = threading.Thread(target=lambda: result.update(stack.simulate(6, 8, 240)))
    publisher.start()
    wait_for(lambda: stack.scalar("SELECT count() FROM gpuwatch.metrics_raw") > 20_000, 120,
             interval=0.1, what="the pipeline to be mid-stream")
    first.kill()
    publisher.join(300)
    n = result["samples_published"]
    stack.start_pipeline()
    wait_for(lambda: stack.scalar("SELECT count() FROM gpuwatch.metrics_raw") >= n, 180, what=f"{n} rows")
    time.sleep(3)
    row = stack.query("SELECT count() AS rows, uniqExact(node, gpu, metric, ts) AS points FROM gpuwatch.metrics_raw")[0]
    assert row == {"rows": n, "points": n}
    # windows were rebuilt from replayed offsets, so the features still account for every sample once
    wait_for(lambda: stack.scalar("SELECT sum(count) FROM gpuwatch.features_1m FINAL") == n, 60,
             what="features covering every sample exactly once")
