"""Webhook plugin: Alertmanager v4 payload, HMAC signature verified by a real local receiver."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest
from notify_helpers import make_event, make_notification, send_once

from pipelines.notify.receivers.base import NotifyError
from pipelines.notify.receivers.webhook import WebhookConfig, WebhookNotifier


def test_payload_is_alertmanager_v4_and_signature_verifies(http_receiver):
    hook = http_receiver(secret=b"s3cret-key")
    n = make_notification(make_event(node="n1", gpu="3"), make_event(node="n2", gpu="3"),
                          group_labels={"alertname": "GpuHot"}, external_url="https://gw.example")
    send_once(WebhookNotifier(WebhookConfig(url=hook.url("/am?x=1"), hmac_secret="s3cret-key"), "team"), n)
    (got,) = hook.received
    assert got.path == "/am?x=1" and hook.bad_signatures == 0
    ts = int(got.headers["x-gpuwatch-timestamp"])
    assert abs(ts - time.time()) < 5
    want = hmac.new(b"s3cret-key", f"{ts}.".encode() + got.body, hashlib.sha256).hexdigest()
    assert got.headers["x-gpuwatch-signature"] == f"sha256={want}"
    doc = got.json()
    assert doc["version"] == "4" and doc["receiver"] == "team" and doc["status"] == "firing"
    assert doc["groupLabels"] == {"alertname": "GpuHot"} and doc["externalURL"] == "https://gw.example"
    assert doc["commonLabels"] == {"alertname": "GpuHot", "gpu": "3", "severity": "warning"}
    assert doc["commonAnnotations"] == {} and doc["truncatedAlerts"] == 0
    assert doc["groupKey"] == '{}:{alertname="GpuHot"}'
    assert [a["labels"]["node"] for a in doc["alerts"]] == ["n1", "n2"]
    assert doc["alerts"][0]["startsAt"].endswith("Z") and doc["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"


def test_a_wrong_key_is_refused_by_the_receiver_and_not_retried(http_receiver):
    hook = http_receiver(secret=b"right")
    notifier = WebhookNotifier(WebhookConfig(url=hook.url(), hmac_secret="wrong-key"), "team")
    with pytest.raises(NotifyError) as e:
        send_once(notifier, make_notification(make_event()))
    assert hook.bad_signatures == 1 and e.value.recoverable is False and "401" in str(e.value)


def test_max_alerts_truncates_and_counts(http_receiver):
    hook = http_receiver()
    n = make_notification(*(make_event(node=f"n{i}") for i in range(5)))
    send_once(WebhookNotifier(WebhookConfig(url=hook.url(), max_alerts=2), "team"), n)
    doc = hook.received[0].json()
    assert len(doc["alerts"]) == 2 and doc["truncatedAlerts"] == 3


@pytest.mark.parametrize("status, recoverable", [(500, True), (503, True), (429, True), (404, False), (400, False)])
def test_failures_say_if_they_are_recoverable(http_receiver, status, recoverable):
    hook = http_receiver(ok_status=status)
    with pytest.raises(NotifyError) as e:
        send_once(WebhookNotifier(WebhookConfig(url=hook.url("/secret-path-token")), "team"),
              make_notification(make_event()))
    assert e.value.recoverable is recoverable
    assert "secret-path-token" not in str(e.value) and str(status) in str(e.value)


def test_unreachable_and_timeouts_are_recoverable_and_redacted():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)  # accepts the connection, never answers: a timeout
    port = s.getsockname()[1]
    try:
        with pytest.raises(NotifyError) as e:
            send_once(WebhookNotifier(WebhookConfig(url=f"http://u:pw@127.0.0.1:{port}/tok", timeout="0.3s"), "t"),
                  make_notification(make_event()))
        assert e.value.recoverable and "timed out" in str(e.value)
        assert "tok" not in str(e.value) and "pw" not in str(e.value)
    finally:
        s.close()
    with pytest.raises(NotifyError) as e:
        send_once(WebhookNotifier(WebhookConfig(url=f"http://127.0.0.1:{port}/tok2"), "t"),
              make_notification(make_event()))
    assert e.value.recoverable and "cannot reach" in str(e.value) and "tok2" not in str(e.value)


def test_every_attempt_of_one_notification_carries_the_same_idempotency_key(http_receiver):
    """A receiver that answered slowly may see the retry of a request it already handled:
    the key lets it drop the repeat, and a different notification never reuses it."""
    hook = http_receiver()
    config = WebhookConfig(url=hook.url())
    firing = make_event(node="n1", gpu="3")
    update = firing.model_copy(update={"event_ts": firing.event_ts + 5})
    resolved = firing.model_copy(update={"status": "resolved", "ends_at": firing.starts_at + 60,
                                         "event_ts": firing.starts_at + 60})
    # the first notification, its retry (a fresh notifier: as after a restart), an update, the resolution
    for event in (firing, firing, update, resolved):
        send_once(WebhookNotifier(config, "team"), make_notification(event))
    keys = [r.headers["idempotency-key"] for r in hook.received]
    assert keys[0] == keys[1] and len(set(keys)) == 3
    assert [r.json()["idempotencyKey"] for r in hook.received] == keys
