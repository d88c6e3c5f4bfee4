"""Every incident is paged, even one that fired and ended before its group was next sent.

A worker draining a backlog publishes the decisions about minutes of samples in
a burst: one alert fires, resolves and fires again (a new incident, same
fingerprint) within one Kafka batch or one ``group_interval``. The notifier
kept only the newest state per fingerprint, so the first incident was never
told (issue 11: 5 of 20 pages never came while the pipeline drained a backlog).
A page per incident (fingerprint, start) must reach the receiver, in order.
"""

from __future__ import annotations

import asyncio
import time

from notify_helpers import ServiceHarness, make_event

from pipelines.notify.config import quick_config


def _quick(url: str, group_interval: str = "1s") -> dict:
    route = quick_config([url]).route
    return {"route": {"receiver": route.receiver, "group_by": route.group_by, "group_wait": "0s",
                      "group_interval": group_interval, "repeat_interval": "4h"},
            "receivers": [{"name": "default", "webhook_configs": [{"url": url}]}]}


def _burst(n: int) -> list:
    """``n`` incidents of one alert, each firing then resolving, as a backlog replay publishes them."""
    t0 = time.time() - 100
    out = []
    for i in range(n):
        start = t0 + 5 * i
        out.append(make_event(starts_at=start, event_ts=start, node="n1", gpu="0"))
        out.append(make_event(status="resolved", starts_at=start, event_ts=start + 2, node="n1", gpu="0"))
    out.append(make_event(starts_at=t0 + 5 * n, event_ts=t0 + 5 * n, node="n1", gpu="0"))  # the last still firing
    return out


def _paged(hook) -> list[str]:
    return [a["startsAt"] for r in hook.received for a in r.json()["alerts"] if a["status"] == "firing"]


def test_incidents_in_one_batch_are_each_paged(http_receiver, tmp_path):
    hook = http_receiver()
    events = _burst(3)

    async def scenario():
        h = ServiceHarness(_quick(hook.url(), "0.2s"), tmp_path)
        h.ingest(*events)  # one Kafka batch
        await asyncio.sleep(3.0)
        await h.close()

    asyncio.run(scenario())
    starts = sorted({e.starts_at for e in events})
    paged = _paged(hook)
    assert len(set(paged)) == len(starts), paged  # 4 incidents, 4 pages
    assert paged == sorted(paged)  # in the order they happened


def test_incidents_between_two_group_flushes_are_each_paged(http_receiver, tmp_path):
    hook = http_receiver()
    events = _burst(2)

    async def scenario():
        h = ServiceHarness(_quick(hook.url(), "1s"), tmp_path)
        for ev in events:  # one Kafka batch each, faster than the group is sent
            h.ingest(ev)
            await asyncio.sleep(0.01)
        await asyncio.sleep(4.0)
        await h.close()

    asyncio.run(scenario())
    assert len(set(_paged(hook))) == 3, _paged(hook)
