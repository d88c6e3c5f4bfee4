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


def test_the_page_shows_the_peers_readings_and_the_resolution_the_readings_then_not_stale_ones():
    sent: list[AlertEvent] = []

    async def send(key: bytes, value: bytes) -> None:
        sent.append(decode(value, AlertEvent))

    ctx = PipelineContext(settings=PipelineSettings(_env_file=None), sink=_Sink(), windows=None, rules=None,
                          ledger=None, send_alert=send, send_dead_letter=send)
    now = time.time()

    def tick(ts: float, hot: float) -> list[Condition]:
        ctx.latest_rows["n1"] = [(ts, "n1", g, "", "gpu_temp_c", hot if g == 3 else 70.0 + g / 10, "C", {}, 0, 0)
                                 for g in range(8)]
        if hot < 80:
            return []
        return [Condition("GpuHotterThanPeers", {"node": "n1", "gpu": "3"}, ts=ts, node="n1", evidence=[
            Evidence(metric="gpu_temp_c", value=hot, baseline=70.3, detail="peer baseline: median of 8 GPUs")])]

    async def scenario() -> None:
        await ctx.decide("n1", now, tick(now, 84.5), "metrics")
        await ctx.decide("n1", now + 1, tick(now + 1, 71.0), "metrics")

    asyncio.run(scenario())
    page, resolved = sent
    assert page.annotations["peers"].startswith("temperature now: GPU 3 84.5 °C; peers GPU 0 70 °C, GPU 1 70.1 °C")
    assert resolved.status == "resolved" and resolved.evidence[0].value == 71.0
    assert resolved.annotations["at_resolution"] == "temperature on GPU 3 is 71 °C now (84.5 °C while it fired)"
