"""The demo path: ``gpuwatch notify --webhook URL`` on the real broker, one POST per state change."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.integration


def test_firing_then_resolved_gives_exactly_one_post_each(http_receiver, publisher, notify_worker, alert_event):
    hook = http_receiver(secret=b"demo-key")
    worker = notify_worker("--webhook", hook.url(), "--webhook-secret", "demo-key")
    firing = alert_event("firing", node="gpu-07")
    publisher.send(firing)
    got = hook.wait_for(1, timeout=15)
    assert len(got) == 1, worker.log()
    doc = got[0].json()
    assert doc["version"] == "4" and doc["status"] == "firing" and doc["receiver"] == "default"
    assert set(doc) >= {"groupLabels", "commonLabels", "commonAnnotations", "externalURL", "groupKey",
                        "truncatedAlerts", "alerts"}
    (a,) = doc["alerts"]
    assert a["fingerprint"] == firing.fingerprint and a["labels"]["node"] == "gpu-07"
    assert a["labels"]["alertname"] == "GpuHot" and a["endsAt"] == "0001-01-01T00:00:00Z"
    assert set(a) == {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}

    resolved = alert_event("resolved", node="gpu-07", starts_at=firing.starts_at)
    publisher.send(resolved)
    got = hook.wait_for(2, timeout=15)
    assert len(got) == 2
    assert got[1].json()["status"] == "resolved"
    assert got[1].json()["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
    time.sleep(2.5)  # two more group_interval ticks: nothing is sent again
    assert len(hook.received) == 2 and hook.bad_signatures == 0
    assert "notify default" in worker.log()  # the log receiver saw it too
    assert worker.stop() == 0
