"""Delivery on the real broker: retries on 5xx, the notification log across restarts, bad input."""

from __future__ import annotations

import time

import pytest

from notify_helpers import free_port, read_history

pytestmark = pytest.mark.integration


def _wait(cond, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_5xx_then_200_is_retried_and_delivered_once(http_receiver, publisher, notify_worker, alert_event,
                                                    bootstrap, notify_topics):
    hook = http_receiver(script=[503, 500])
    notify_worker("--webhook", hook.url())
    ev = alert_event("firing", node="n-retry")
    publisher.send(ev)
    got = hook.wait_for(1, timeout=20)
    time.sleep(2.0)  # later group ticks must not deliver it again
    assert len(got) == 1 and len(hook.received) == 1
    assert len(hook.rejected) == 2
    assert got[0].json()["alerts"][0]["fingerprint"] == ev.fingerprint

    rows = [r for r in read_history(bootstrap, notify_topics["history"], want=3)
            if r["table"] == "notification_attempts" and r["integration"] == "default/webhook/0"]
    outcomes = [r["outcome"] for r in sorted(rows, key=lambda r: r["ts"])]
    assert outcomes == ["failed_recoverable", "failed_recoverable", "delivered"]
    assert [r["attempt"] for r in sorted(rows, key=lambda r: r["ts"])] == [1, 2, 3]
    assert all(ev.fingerprint in r["fingerprints"] for r in rows)
    assert "503" in rows[0]["error"] and f"{hook.port}/hook" not in rows[0]["error"]  # URL path redacted


def test_4xx_is_not_retried(http_receiver, publisher, notify_worker, alert_event):
    hook = http_receiver(script=[400])
    worker = notify_worker("--webhook", hook.url())
    publisher.send(alert_event("firing", node="n-400"))
    _wait(lambda: len(hook.rejected) == 1, what="the 400")
    time.sleep(0.8)  # well within the retry window: a recoverable error would have been retried by now
    assert len(hook.rejected) == 1 and hook.received == []
    assert "not retrying" in worker.log()


def test_receiver_down_across_restart_delivers_once_after_restart(http_receiver, publisher, notify_worker,
                                                                  alert_event):
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    first = notify_worker("--webhook", url)
    ev = alert_event("firing", node="n-down")
    publisher.send(ev)
    _wait(lambda: "cannot reach" in first.log(), what="a failed attempt while the receiver is down")
    assert first.stop() == 0

    hook = http_receiver(port=port)  # the receiver comes back while the worker is down
    second = notify_worker("--webhook", url)
    got = hook.wait_for(1, timeout=20)
    assert [r.json()["alerts"][0]["fingerprint"] for r in got] == [ev.fingerprint]
    time.sleep(1.5)
    assert second.stop() == 0

    notify_worker("--webhook", url)  # a third start must not resend what was delivered
    time.sleep(2.5)
    assert len(hook.received) == 1

    publisher.send(alert_event("resolved", node="n-down", starts_at=ev.starts_at))
    got = hook.wait_for(2, timeout=20)
    assert [r.json()["status"] for r in got] == ["firing", "resolved"]


def test_bad_messages_are_dead_lettered_and_do_not_stop_the_worker(http_receiver, publisher, notify_worker,
                                                                   alert_event, bootstrap, notify_topics):
    from confluent_kafka import Consumer

    from schemas.codec import decode
    from schemas.deadletter import DeadLetter

    hook = http_receiver()
    notify_worker("--webhook", hook.url())
    publisher.send(b"{not json", b'{"kind": "alert"}')
    publisher.send(alert_event("firing", node="n-after-bad"))
    assert len(hook.wait_for(1)) == 1

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "t-dead", "auto.offset.reset": "earliest"})
    c.subscribe([notify_topics["alerts"] + ".dead"])
    letters, deadline = [], time.time() + 15
    while len(letters) < 2 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            letters.append(decode(m.value(), DeadLetter))
    c.close()
    assert len(letters) == 2
    assert "invalid JSON" in letters[0].reason and "AlertEvent invalid" in letters[1].reason
