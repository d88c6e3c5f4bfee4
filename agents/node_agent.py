"""The real-host node agent: every interval, poll the collectors and publish one batch.

One scrape is: poll each due collector (a collector that raises is marked
unhealthy, logged once per distinct error and retried, never fatal), put the
job labels from attribution on each GPU's samples, add the agent's own
counters, then send one ``MetricBatch`` per node per scrape, each event, the
log records as ``LogBatch`` messages and, on its own schedule, a heartbeat.
Delivery (Kafka or the spool) is :mod:`agents.delivery`'s job.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from agents.attribution import Attributor
from agents.collectors import REGISTRY
from agents.collectors.base import Collector, NodeContext, Sample
from agents.config import AgentConfig
from agents.heartbeat import build_heartbeat

log = logging.getLogger("gpuwatch.agent")

#: Keep each message under Kafka's (and the pipeline's) 1 MiB limit with room for overhead.
MAX_MESSAGE_BYTES = 900_000
MAX_SAMPLES_PER_BATCH = 20_000
MAX_LOG_RECORDS_PER_BATCH = 5_000
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class _Slot:
    """One collector plus the runner's view of it: schedule, health and errors."""

    collector: Collector
    interval: float
    next_due: float = 0.0
    started: bool = False
    pushing: bool = False
    healthy: bool = False
    errors: int = 0
    retry_at: float = 0.0
    logged: set = field(default_factory=set)

    def _fail(self, what: str, e: Exception) -> None:
        self.healthy = False
        self.errors += 1
        msg = f"{type(e).__name__}: {e}"
        if msg not in self.logged:
            if len(self.logged) < 100:
                self.logged.add(msg)
            bug = isinstance(e, (TypeError, KeyError, AttributeError, IndexError, NameError, ZeroDivisionError))
            log.warning("collector %s: %s failed: %s", self.collector.name, what, msg, exc_info=bug)

    def ensure_started(self, mono: float) -> bool:
        if self.started:
            return True
        if mono < self.retry_at:
            return False
        try:
            self.collector.start()
            self.started = self.healthy = True
        except Exception as e:  # noqa: BLE001 - no collector may stop the agent
            self._fail("start", e)
            self.retry_at = mono + 60.0
        return self.started

    def poll(self, now: float, samples: list, events: list, logs: list) -> None:
        ok = True
        for what, fn, out in (("collect", self.collector.collect, samples), ("events", self.collector.events, events),
                              ("logs", self.collector.logs, logs)):
            try:
                out.extend(fn(now))
            except Exception as e:  # noqa: BLE001
                ok = False
                self._fail(what, e)
        if ok:
            self.healthy = True


class NodeAgent:
    def __init__(self, config: AgentConfig, delivery: Any, *, collectors: list[Collector] | None = None,
                 nvml: Any = None) -> None:
        self.config = config
        self.delivery = delivery
        self.context = NodeContext(node=config.node, state_dir=config.state_dir)
        if collectors is None:
            collectors = self._build_collectors(nvml)
        self.slots = [_Slot(c, c.config.interval_s or config.interval_s) for c in collectors]
        att = config.collectors.attribution
        self.attributor = Attributor(att) if att.enabled else None
        self.seq = 0
        self._next_heartbeat = 0.0
        self._spool_dropped_seen = 0
        self.counts = {"scrapes": 0, "samples": 0, "events": 0, "log_records": 0, "heartbeats": 0,
                       "samples_dropped": 0, "samples_nonfinite": 0, "events_pushed": 0}
        #: Pushed events are sent from collectors' threads; one lock keeps delivery single-threaded.
        self._send_lock = threading.RLock()
        self._by_gpu: dict[int, dict[str, str]] = {}
        #: The optional /metrics page (agents.prometheus_exporter), fed each scrape and each pushed event.
        self.exporter: Any = None

    def _build_collectors(self, nvml: Any) -> list[Collector]:
        out = []
        for name, cls in REGISTRY.items():
            cfg = getattr(self.config.collectors, name)
            if not cfg.enabled:
                continue
            kwargs = {"nvml": nvml} if name == "nvml" and nvml is not None else {}
            out.append(cls(cfg, self.context, **kwargs))
        return out

    def health(self) -> dict[str, bool]:
        return {s.collector.name: s.started and s.healthy for s in self.slots}

    # -- one scrape ------------------------------------------------------------------------
    def tick(self, now: float | None = None, mono: float | None = None, final: bool = False) -> None:
        now = time.time() if now is None else now
        mono = time.monotonic() if mono is None else mono
        t0 = time.perf_counter()
        samples: list[Sample] = []
        events: list[dict] = []
        logs: list[dict] = []
        for slot in self.slots:
            # 10% slack, so a tick that wakes a hair early never skips a collector due "now".
            if (final or mono >= slot.next_due - 0.1 * slot.interval) and slot.ensure_started(mono):
                slot.next_due = mono + slot.interval
                if not slot.pushing:
                    slot.pushing = slot.collector.start_push(self.publish_event)
                slot.poll(now, samples, events, logs)
        self._attribute(samples, events)
        if self.exporter is not None:
            self.exporter.update(samples)
            for ev in events:
                self.exporter.event(ev)
        self.seq += 1
        samples.extend(self._self_samples(time.perf_counter() - t0))
        with self._send_lock:
            self._send_metrics(now, samples)
            cfg = self.config.kafka.topics
            for ev in events + self._spool_events(now):
                self.delivery.send(cfg.events, self.config.node, orjson.dumps(ev))
            self.counts["events"] += len(events)
            self._send_logs(logs)
            if mono >= self._next_heartbeat - 0.1 * self.config.interval_s or final:
                self._next_heartbeat = mono + self.config.heartbeat_interval_s
                hb = build_heartbeat(self.context, now, self.config.heartbeat_interval_s, self.health(),
                                     self.config.labels)
                self.delivery.send(cfg.heartbeats, self.config.node, orjson.dumps(hb))
                self.counts["heartbeats"] += 1
            self.counts["scrapes"] += 1
            self.delivery.pump()

    def publish_event(self, ev: dict) -> None:
        """Send one event now, off the scrape tick (XIDs as the kernel logs them), and flush it out."""
        self._attribute_events([ev], self._by_gpu)
        if self.exporter is not None:
            self.exporter.event(ev)
        payload = orjson.dumps(ev)
        with self._send_lock:
            self.delivery.send(self.config.kafka.topics.events, self.config.node, payload)
            self.counts["events"] += 1
            self.counts["events_pushed"] += 1
            self.delivery.expedite()

    def _attribute(self, samples: list[Sample], events: list[dict]) -> None:
        """Put each GPU's job labels on its samples (a process sample gets its own process's)."""
        if self.attributor is None or not self.context.gpu_pids:
            return
        by_gpu = self._by_gpu = self.attributor.gpu_labels(self.context.gpu_pids)
        if not by_gpu:
            return
        for s in samples:
            g = s["gpu"]
            if g < 0:
                continue
            own = s.get("labels")
            if own and own.get("pid", "").isdigit():
                extra = self.attributor.labels_for_pid(int(own["pid"]))
            else:
                extra = by_gpu.get(g)
            if extra:
                merged = {**extra, **own} if own else dict(extra)
                s["labels"] = merged if len(merged) <= 32 else dict(list(merged.items())[:32])
        self._attribute_events(events, by_gpu)

    def _attribute_events(self, events: list[dict], by_gpu: dict[int, dict[str, str]]) -> None:
        if self.attributor is None:
            return
        for ev in events:
            pid = ev.get("labels", {}).get("pid")
            extra = self.attributor.labels_for_pid(int(pid)) if pid and pid.isdigit() else by_gpu.get(ev["gpu"])
            if extra:
                ev["labels"] = {**extra, **ev.get("labels", {})}

    def _self_samples(self, scrape_s: float) -> list[Sample]:
        st = self.delivery.stats()
        t = os.times()
        try:
            with open("/proc/self/statm") as f:
                rss = int(f.read().split()[1]) * _PAGE
        except OSError:
            rss = 0
        errors = sum(s.errors for s in self.slots)
        vals = (("agent_scrape_duration_s", scrape_s, "s"), ("agent_cpu_seconds_total", t.user + t.system, "s"),
                ("agent_rss_bytes", float(rss), "B"), ("agent_collector_errors_total", float(errors), ""),
                ("agent_spool_messages", float(st.get("spool_messages", 0)), ""),
                ("agent_spool_bytes", float(st.get("spool_bytes", 0)), "B"),
                ("agent_spool_dropped_total", float(st.get("spool_dropped", 0)), ""),
                ("agent_delivery_dropped_total", float(st.get("dropped_permanent", 0)), ""),
                ("agent_log_records_total", float(self.counts["log_records"]), ""),
                ("agent_collectors_unhealthy", float(sum(not h for h in self.health().values())), ""))
        out = [{"gpu": -1, "uuid": "", "metric": m, "value": v, "unit": u} for m, v, u in vals]
        for slot in self.slots:  # each collector's own counts: received, dropped, errors ...
            try:
                stats = slot.collector.stats()
            except Exception:  # noqa: BLE001
                continue
            out += [{"gpu": -1, "uuid": "", "metric": f"agent_{slot.collector.name}_{k}", "value": float(v), "unit": ""}
                    for k, v in stats.items()]
        return out

    def _spool_events(self, now: float) -> list[dict]:
        dropped = self.delivery.stats().get("spool_dropped", 0)
        if dropped <= self._spool_dropped_seen:
            return []
        n, self._spool_dropped_seen = dropped - self._spool_dropped_seen, dropped
        return [{"v": 1, "kind": "event", "node": self.config.node, "ts": now, "source": "agent", "code": 0,
                 "severity": "warning", "action": "none", "title": f"agent spool full: {n} oldest messages dropped",
                 "message": f"Kafka was unreachable for longer than the spool ({self.config.spool.max_bytes} bytes) "
                            f"could hold; the {n} oldest unsent messages were dropped ({dropped} since start)."}]

    def _send_metrics(self, now: float, samples: list[Sample]) -> None:
        finite = [x for x in samples if isinstance(x["value"], (int, float)) and math.isfinite(x["value"])]
        if len(finite) != len(samples):  # the wire refuses NaN: one such sample sank the node's whole batch
            self.counts["samples_nonfinite"] += len(samples) - len(finite)
            samples = finite
        if len(samples) > MAX_SAMPLES_PER_BATCH:
            self.counts["samples_dropped"] += len(samples) - MAX_SAMPLES_PER_BATCH
            samples = samples[:MAX_SAMPLES_PER_BATCH]
        make_series_unique(samples, now)
        self.counts["samples"] += len(samples)
        base = {"v": 1, "kind": "metrics", "node": self.config.node, "ts": now, "seq": self.seq}
        if self.config.labels:
            base["labels"] = self.config.labels
        topic = self.config.kafka.topics.metrics
        for chunk in _chunks(samples, base, "samples"):
            self.delivery.send(topic, self.config.node, chunk)

    def _send_logs(self, logs: list[dict]) -> None:
        if not logs:
            return
        self.counts["log_records"] += len(logs)
        base = {"v": 1, "kind": "logs", "node": self.config.node}
        topic = self.config.kafka.topics.logs
        for i in range(0, len(logs), MAX_LOG_RECORDS_PER_BATCH):
            for chunk in _chunks(logs[i:i + MAX_LOG_RECORDS_PER_BATCH], base, "records"):
                self.delivery.send(topic, self.config.node, chunk)

    # -- lifecycle -------------------------------------------------------------------------
    def run(self, stop: threading.Event, max_ticks: int | None = None) -> None:
        """Scrape every interval until ``stop`` is set (SIGTERM), then shut down cleanly."""
        interval = self.config.interval_s
        next_at = time.monotonic()
        ticks = 0
        log.info("gpuwatch agent on %s: scraping every %.1fs with %s", self.config.node, interval,
                 ", ".join(s.collector.name for s in self.slots) or "no collectors")
        try:
            while not stop.is_set():
                try:
                    self.tick()
                except Exception:  # noqa: BLE001 - a bug in one scrape must not end the agent
                    log.exception("scrape %d failed; carrying on", self.seq)
                ticks += 1
                if max_ticks is not None and ticks >= max_ticks:
                    break
                next_at += interval
                now = time.monotonic()
                if next_at < now:  # fell behind (a slow scrape): skip, don't burst
                    next_at = now + interval
                stop.wait(next_at - now)
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        for slot in self.slots:
            slot.collector.stopping()
        try:
            self.tick(final=True)
        except Exception:  # noqa: BLE001 - still close everything
            log.exception("final scrape failed")
        for slot in self.slots:
            try:
                slot.collector.close()
            except Exception:  # noqa: BLE001
                log.exception("closing collector %s failed", slot.collector.name)
        left = self.delivery.close(self.config.shutdown_timeout_s)
        log.info("gpuwatch agent stopped after %d scrapes; %d message(s) left in the spool for next start",
                 self.counts["scrapes"], left)


def make_series_unique(samples: list[Sample], now: float) -> None:
    """Give each repeat of (gpu, metric) in a batch its own timestamp, 1 µs apart.

    ``MetricBatch`` refuses two samples with the same (gpu, metric, ts), but
    one GPU can carry several series of one metric told apart by labels (a
    sample per process, per MIG instance, per NIC, per Prometheus series).
    Those repeats get ``ts = now + k µs``; the first keeps the batch time.
    """
    seen: dict[tuple[int, str], int] = {}
    for s in samples:
        key = (s["gpu"], s["metric"])
        k = seen.get(key)
        if k is None:
            seen[key] = 0
            continue
        k += 1
        seen[key] = k
        s["ts"] = now + k * 1e-6


def _chunks(items: list[dict], base: dict, field_name: str):
    """Encoded messages of ``base`` + ``items``, split in halves until each fits MAX_MESSAGE_BYTES."""
    payload = orjson.dumps({**base, field_name: items})
    if len(payload) <= MAX_MESSAGE_BYTES or len(items) <= 1:
        yield payload
        return
    mid = len(items) // 2
    yield from _chunks(items[:mid], base, field_name)
    yield from _chunks(items[mid:], base, field_name)
