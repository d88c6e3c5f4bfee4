"""Quick mode (`notify --webhook`): one fault is one notification; its updates are sent as the same incident."""

from __future__ import annotations

import asyncio

from notify_helpers import ServiceHarness, make_event

from pipelines.notify.config import quick_config


def _quick(url: str) -> dict:
    cfg = quick_config([url])
    route = cfg.route
    return {"route": {"receiver": route.receiver, "group_by": route.group_by, "group_wait": "0s",
                      "group_interval": "0.3s", "repeat_interval": "4h"},
            "receivers": [{"name": "default", "webhook_configs": [{"url": url, "send_updates": True}]}]}


def test_quick_mode_groups_by_node_and_gpu_not_every_label():
    assert quick_config(["http://127.0.0.1:1/hook"]).route.group_by == ["node", "gpu"]


def test_an_update_of_a_paged_incident_is_sent_as_the_same_incident_not_a_new_page(http_receiver, tmp_path):
    hook = http_receiver()

    async def scenario():
        h = ServiceHarness(_quick(hook.url()), tmp_path)
        first = make_event(alertname="GpuEccDoubleBitErrors", node="n1", gpu="3", xid="79")
        h.ingest(first)
        await asyncio.sleep(0.5)
        later = first.model_copy(update={"annotations": {"conditions": "GpuEccDoubleBitErrors, GpuEccErrorBurst"},
                                         "event_ts": first.event_ts + 2})
        h.ingest(later)
        await asyncio.sleep(0.8)
        await h.close()

    asyncio.run(scenario())
    bodies = [r.json() for r in hook.received]
    assert len(bodies) == 2, bodies  # the page, then its update
    incidents = {(a["fingerprint"], a["startsAt"]) for b in bodies for a in b["alerts"]}
    assert len(incidents) == 1
    assert bodies[1]["alerts"][0]["annotations"]["conditions"] == "GpuEccDoubleBitErrors, GpuEccErrorBurst"
    assert bodies[0]["groupLabels"] == {"node": "n1", "gpu": "3"}
