"""Delivery through a real Kafka broker that is stopped and restarted mid-stream, with exact counts.

These tests start their own broker (the session broker is shared with other
suites and must not be stopped), on free loopback ports in a temp directory.
"""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

from agents.delivery import Delivery
from agents.spool import Spool

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory):
    from infra.kafka.broker import LocalKafka, free_port

    broker = LocalKafka(tmp_path_factory.mktemp("own-kafka"), port=free_port(), controller_port=free_port(),
                        heap="384m")
    broker.start(timeout=180)
    try:
        yield broker
    finally:
        broker.stop()


def _topic(broker) -> str:
    name = f"agent-spool-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(name, 1, 1)])[name].result(30)
    return name


def _pump_until(delivery: Delivery, cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {delivery.stats()}"
        delivery.pump()
        time.sleep(0.05)


def _consume(bootstrap: str, topic: str, expect: int, timeout: float = 60) -> list[int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([topic])
    seqs: list[int] = []
    deadline = time.monotonic() + timeout
    quiet_until = None
    try:
        while time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is None:
                if len(seqs) >= expect:  # a little longer, to catch duplicates that arrive late
                    quiet_until = quiet_until or time.monotonic() + 2
                    if time.monotonic() > quiet_until:
                        break
                continue
            if msg.error():
                continue
            seqs.append(int(msg.value().split(b":", 1)[0]))
    finally:
        c.close()
    return seqs


def _delivery(broker, tmp_path, **spool_kw) -> Delivery:
    spool = Spool(tmp_path / "spool", **spool_kw)
    return Delivery({"bootstrap.servers": broker.bootstrap}, spool, delivery_timeout_s=3.0, retry_s=0.5,
                    replay_budget_s=0.2)


def _payload(i: int, size: int = 200) -> bytes:
    return f"{i:06d}:".encode() + b"x" * size  # fixed width: every record is the same size


def test_outage_spools_and_replays_in_order_with_nothing_lost(own_broker, tmp_path):
    topic = _topic(own_broker)
    d = _delivery(own_broker, tmp_path)
    seq = 0
    for _ in range(50):
        d.send(topic, "node-1", _payload(seq)); seq += 1
        d.pump()
    _pump_until(d, lambda: d.publisher.stats.delivered == 50, 30, "the first 50 deliveries")

    own_broker.stop()
    for _ in range(120):  # two minutes' worth of 1 s scrapes, sent fast
        d.send(topic, "node-1", _payload(seq)); seq += 1
        d.pump()
        time.sleep(0.02)
    _pump_until(d, lambda: d.spooling and d.publisher.pending() == 0 and not d._held, 30,
                "the outage to be noticed and everything spooled")
    assert d.spool.messages == 120 and d.stats()["spool_dropped"] == 0

    own_broker.start(timeout=120)
    for _ in range(30):  # the agent keeps scraping while it replays
        d.send(topic, "node-1", _payload(seq)); seq += 1
        d.pump()
    _pump_until(d, lambda: d.spool.messages == 0 and not d.spooling and d.publisher.pending() == 0, 90,
                "the spool to drain")
    for _ in range(20):
        d.send(topic, "node-1", _payload(seq)); seq += 1
    assert d.close(10) == 0

    got = _consume(own_broker.bootstrap, topic, expect=seq)
    assert len(got) == seq == 220, f"{len(got)} messages arrived, {seq} sent"
    assert got == list(range(seq)), "messages were lost, duplicated or reordered"
    st = d.stats()
    assert st["outages"] == 1 and st["replayed"] >= 120 and st["dropped_permanent"] == 0


def test_past_the_bound_the_oldest_are_dropped_and_counted_exactly(own_broker, tmp_path):
    topic = _topic(own_broker)
    record = 12 + len(topic) + len("node-1") + len(_payload(0, 1000))
    d = _delivery(own_broker, tmp_path, max_bytes=40 * record, segment_bytes=8 * record)
    seq = 0
    for _ in range(10):
        d.send(topic, "node-1", _payload(seq, 1000)); seq += 1
    _pump_until(d, lambda: d.publisher.stats.delivered == 10, 30, "the first deliveries")

    own_broker.stop()
    for _ in range(100):  # 100 messages into a spool that holds 40
        d.send(topic, "node-1", _payload(seq, 1000)); seq += 1
        d.pump()
        time.sleep(0.01)
    _pump_until(d, lambda: d.spooling and d.publisher.pending() == 0 and not d._held, 30, "everything spooled")
    assert d.spool.messages == 40 and d.spool.dropped == 60

    own_broker.start(timeout=120)
    _pump_until(d, lambda: d.spool.messages == 0 and not d.spooling, 90, "the spool to drain")
    d.close(10)
    got = _consume(own_broker.bootstrap, topic, expect=50)
    assert got == list(range(10)) + list(range(70, 110)), "expected the first 10 and the newest 40"


def test_shutdown_while_kafka_is_down_keeps_everything_for_the_next_start(own_broker, tmp_path):
    topic = _topic(own_broker)
    d = _delivery(own_broker, tmp_path)
    own_broker.stop()
    try:
        for i in range(25):
            d.send(topic, "node-1", _payload(i))
            d.pump()
        left = d.close(timeout_s=1.0)  # SIGTERM during the outage: nothing may be lost
        assert left == 25
    finally:
        own_broker.start(timeout=120)
    d2 = _delivery(own_broker, tmp_path)  # the next agent start, same spool
    assert d2.spool.messages == 25
    _pump_until(d2, lambda: d2.spool.messages == 0 and d2.publisher.pending() == 0, 60, "the replay")
    d2.close(10)
    assert _consume(own_broker.bootstrap, topic, expect=25) == list(range(25))
