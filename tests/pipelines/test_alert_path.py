"""The alert path: the page goes out with what is in memory; the slow log lookup follows as an update."""

from __future__ import annotations

import asyncio
import threading
import time

from pipelines.context import PipelineContext
from pipelines.decide import Condition
from pipelines.settings import PipelineSettings
from schemas.alerts import AlertEvent, Evidence
from schemas.codec import decode


class _Sink:
    def __init__(self) -> None:
        self.rows: dict[str, list] = {}

    def add(self, table: str, rows, *, partition=None, offset=None) -> None:
        self.rows.setdefault(table, []).extend(rows)


class _SlowExplainer:
    """Log lookup stuck behind the store's lock (a long insert) until the test releases it."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def explain(self, *, node, job, ts):
        self.release.wait(30)
        return [Evidence(metric="log_template_burst", value=12.0, detail="template 7: NCCL watchdog timeout")], \
            "SELECT 1"


def test_the_page_does_not_wait_for_the_log_lookup_which_follows_as_an_update():
    sent: list[AlertEvent] = []

    async def send(key: bytes, value: bytes) -> None:
        sent.append(decode(value, AlertEvent))

    explainer = _SlowExplainer()
    ctx = PipelineContext(settings=PipelineSettings(_env_file=None), sink=_Sink(), windows=None, rules=None,
                          ledger=None, send_alert=send, send_dead_letter=send, explainer=explainer)
    now = time.time()
    hot = Condition("GpuHotterThanPeers", {"node": "n1", "gpu": "3"}, ts=now, node="n1",
                    evidence=[Evidence(metric="gpu_temp_c", value=84.1, baseline=69.9,
                                       detail="peer baseline: median of 8 GPUs")])

    async def scenario() -> list[AlertEvent]:
        await asyncio.wait_for(ctx.decide("n1", now, [hot], "metrics"), 60)
        paged = list(sent)  # what the person had before the lookup could finish
        explainer.release.set()
        for _ in range(400):
            if len(sent) > len(paged):
                break
            await asyncio.sleep(0.05)
        return paged

    paged = asyncio.run(scenario())
    assert len(sent) == 2, sent  # the page, then the update with the logs
    assert [e.status for e in paged] == ["firing"] and paged[0].evidence[0].metric == "gpu_temp_c"
    assert "84.1 °C" in paged[0].annotations["evidence"]
    update = sent[-1]
    assert (update.fingerprint, update.starts_at, update.status) == (paged[0].fingerprint, paged[0].starts_at, "firing")
    assert update.event_ts > paged[0].event_ts and update.evidence[-1].metric == "log_template_burst"
    assert update.annotations["logs_query"] == "SELECT 1"
