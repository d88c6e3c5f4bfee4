"""Delivery as a pipeline of stages: mute -> dedup -> retry -> receiver.

Like Alertmanager's ``notify/notify.go``: each stage does one thing, receivers
only send, and only :class:`RetryStage` retries. A group flush runs the mute
stage once, then dedup and retry per receiver integration, concurrently.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass

from pipelines.notify.acks import Acks
from pipelines.notify.alert import Alert
from pipelines.notify.history import NOTIFICATION_ATTEMPTS, HistorySink
from pipelines.notify.inhibition import Inhibitor
from pipelines.notify.metrics import NotifyMetrics
from pipelines.notify.notification_log import NotificationLog, needs_update
from pipelines.notify.rate_limit import TokenBucket
from pipelines.notify.receivers.base import Notification, Notifier, NotifyError, redact_text
from pipelines.notify.silences import Silences

log = logging.getLogger("gpuwatch.notify.stages")


@dataclass(frozen=True)
class GroupFlush:
    """What a group hands to the pipeline when its timer fires."""

    key: str
    labels: dict[str, str]
    receiver: str
    repeat_interval: float
    group_interval: float
    alerts: list[Alert]


class MuteStage:
    """Holds back firing alerts that a silence or an inhibition rule mutes.

    Resolved alerts pass: a receiver that was told an alert fired should hear
    that it resolved, even if it was silenced in between.
    """

    def __init__(self, silences: Silences, inhibitor: Inhibitor, metrics: NotifyMetrics) -> None:
        self.silences = silences
        self.inhibitor = inhibitor
        self.metrics = metrics

    def mute_reason(self, alert: Alert, now: float) -> str | None:
        if not alert.firing:
            return None
        if self.silences.muting(alert.labels, now):
            return "silenced"
        if self.inhibitor.inhibited_by(alert.labels, alert.fingerprint):
            return "inhibited"
        return None

    def apply(self, alerts: list[Alert], now: float) -> list[Alert]:
        kept = []
        for a in alerts:
            reason = self.mute_reason(a, now)
            if reason is None:
                kept.append(a)
            else:
                self.metrics.muted.labels(reason).inc()
        return kept


class DedupStage:
    """Sends only what the receiver has not been told, per the notification log."""

    def __init__(self, nflog: NotificationLog, acks: Acks) -> None:
        self.nflog = nflog
        self.acks = acks
        #: (integration, group key) -> incident id -> event time of the version last sent; for
        #: ``send_updates`` only, in memory (after a restart an update waits for the next change)
        self._versions: dict[tuple[str, str], dict[str, float]] = {}

    def decide(self, integration: Notifier, flush: GroupFlush, alerts: list[Alert],
               now: float) -> tuple[bool, set[str], set[str]]:
        firing = {a.incident_id for a in alerts if a.firing}
        resolved = {a.incident_id for a in alerts if not a.firing}
        acked = bool(firing) and all(self.acks.for_alert(a) is not None for a in alerts if a.firing)
        entry = self.nflog.get(integration.name, flush.key)
        send = needs_update(entry, firing, resolved, integration.config.send_resolved,
                            flush.repeat_interval, now, all_firing_acked=acked)
        if not send and entry is not None and integration.config.send_updates:
            sent = self._versions.get((integration.name, flush.key), {})
            send = any(a.event_ts > sent[a.incident_id] for a in alerts if a.firing and a.incident_id in sent)
        return send, firing, resolved

    def delivered(self, integration: Notifier, flush: GroupFlush, alerts: list[Alert]) -> None:
        """Remember which version of each firing incident this integration now has."""
        if integration.config.send_updates:
            self._versions[(integration.name, flush.key)] = {a.incident_id: a.event_ts for a in alerts if a.firing}


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: ``base * 2**n``, capped, each wait drawn in [d/2, d]."""

    base_s: float = 0.2
    max_backoff_s: float = 10.0
    #: Give up this flush after this long; the group's next flush tries again.
    min_window_s: float = 10.0
    max_window_s: float = 300.0

    def backoff(self, attempt: int) -> float:
        d = min(self.max_backoff_s, self.base_s * (2 ** (attempt - 1)))
        return d / 2 + random.uniform(0, d / 2)

    def window(self, group_interval: float) -> float:
        return min(self.max_window_s, max(self.min_window_s, group_interval))


class RetryStage:
    """Calls the receiver until it succeeds, fails for good, or the flush's window closes."""

    def __init__(self, policy: RetryPolicy, history: HistorySink, metrics: NotifyMetrics) -> None:
        self.policy = policy
        self.history = history
        self.metrics = metrics
        self._buckets: dict[str, TokenBucket] = {}
        self._in_flight: dict[str, asyncio.Semaphore] = {}

    def _bucket(self, integration: Notifier) -> TokenBucket:
        b = self._buckets.get(integration.name)
        if b is None:
            b = self._buckets[integration.name] = TokenBucket(integration.config.rate_limit,
                                                              integration.config.rate_burst)
        return b

    def _slots(self, integration: Notifier) -> asyncio.Semaphore:
        sem = self._in_flight.get(integration.name)
        if sem is None:
            sem = self._in_flight[integration.name] = asyncio.Semaphore(integration.config.max_in_flight)
        return sem

    async def run(self, integration: Notifier, n: Notification, window_s: float) -> bool:
        deadline = time.monotonic() + window_s
        attempt = 0
        while True:
            attempt += 1
            await self._bucket(integration).acquire()
            started, t0 = time.time(), time.monotonic()
            try:
                async with self._slots(integration):
                    started, t0 = time.time(), time.monotonic()
                    await asyncio.wait_for(integration.notify(n), timeout=integration.config.timeout + 5)
                error, recoverable = None, False
            except NotifyError as e:
                error, recoverable = str(e), e.recoverable
            except asyncio.TimeoutError:
                error, recoverable = f"{integration.kind}: no answer within {integration.config.timeout:g}s", True
            except Exception as e:  # a bug in a notifier must not kill the worker
                error = redact_text(f"{integration.kind}: unexpected {type(e).__name__}: {e}", integration.secrets())
                recoverable = False
            outcome = "delivered" if error is None else ("failed_recoverable" if recoverable else "failed")
            self._record(integration, n, attempt, outcome, recoverable, error or "", started,
                         time.monotonic() - t0)
            if error is None:
                return True
            log.warning("notify %s attempt %d failed (%s): %s", integration.name, attempt,
                        "will retry" if recoverable else "not retrying", error)
            if not recoverable:
                return False
            wait = self.policy.backoff(attempt)
            if time.monotonic() + wait > deadline:
                return False
            await asyncio.sleep(wait)

    def _record(self, integration: Notifier, n: Notification, attempt: int, outcome: str, recoverable: bool,
                error: str, started: float, duration: float) -> None:
        self.metrics.notifications.labels(integration.name, outcome).inc()
        self.history.publish(NOTIFICATION_ATTEMPTS, {
            "ts": started, "receiver": integration.receiver, "integration": integration.name,
            "group_key": n.group_key, "status": n.status, "fingerprints": sorted({a.fingerprint for a in n.alerts}),
            "alert_count": len(n.alerts), "attempt": attempt, "outcome": outcome,
            "recoverable": int(recoverable), "error": error[:1000], "duration_ms": round(duration * 1000, 3),
        }, key=n.group_key)


class DeliveryPipeline:
    """mute -> (per integration) dedup -> retry -> receiver; logs what was delivered."""

    def __init__(self, receivers: dict[str, list[Notifier]], mute: MuteStage, dedup: DedupStage,
                 retry: RetryStage, nflog: NotificationLog, metrics: NotifyMetrics, external_url: str = "") -> None:
        self.receivers = receivers
        self.mute = mute
        self.dedup = dedup
        self.retry = retry
        self.nflog = nflog
        self.metrics = metrics
        self.external_url = external_url

    async def flush(self, flush: GroupFlush) -> bool:
        """Deliver one group's current state; True when every integration is up to date."""
        now = time.time()
        alerts = self.mute.apply(flush.alerts, now)
        if not alerts:
            return True
        integrations = self.receivers.get(flush.receiver, [])
        results = await asyncio.gather(*(self._deliver(i, flush, alerts, now) for i in integrations))
        return all(results)

    async def _deliver(self, integration: Notifier, flush: GroupFlush, alerts: list[Alert], now: float) -> bool:
        send, firing, resolved = self.dedup.decide(integration, flush, alerts, now)
        if not send:
            return True
        to_send = alerts if integration.config.send_resolved else [a for a in alerts if a.firing]
        if to_send:
            n = Notification(receiver=flush.receiver, group_key=flush.key, group_labels=flush.labels,
                             alerts=sorted(to_send, key=lambda a: (a.starts_at, a.fingerprint)),
                             external_url=self.external_url)
            if not await self.retry.run(integration, n, self.retry.policy.window(flush.group_interval)):
                return False
            done = time.time()
            for a in to_send:
                if a.firing and a.received_at:
                    self.metrics.latency.observe(max(0.0, done - a.received_at))
        self.nflog.record(integration.name, flush.key, firing, resolved)
        self.dedup.delivered(integration, flush, alerts)
        return True
