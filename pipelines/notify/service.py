"""The notifier's state and the operations on it, shared by the Kafka consumer and the HTTP API.

Everything here runs on the worker's event loop, so there is one writer and no
locking: ingest a batch of alerts, create or expire silences, ack or unack.
"""

from __future__ import annotations

import time

from pipelines.notify.acks import Ack, AckError, Acks
from pipelines.notify.alert import Alert
from pipelines.notify.alert_store import AlertStore
from pipelines.notify.config import NotifyConfig
from pipelines.notify.free_text import plain_text
from pipelines.notify.grouping import Dispatcher
from pipelines.notify.history import ACKS, SILENCES, HistorySink
from pipelines.notify.inhibition import Inhibitor
from pipelines.notify.matchers import Matcher
from pipelines.notify.metrics import NotifyMetrics
from pipelines.notify.notification_log import NotificationLog
from pipelines.notify.receivers import PLUGINS, Notifier
from pipelines.notify.routing import build_routes
from pipelines.notify.silences import Silence, SilenceError, Silences
from pipelines.notify.stages import DedupStage, DeliveryPipeline, MuteStage, RetryPolicy, RetryStage
from pipelines.notify.state_db import StateDB


def build_notifiers(config: NotifyConfig) -> dict[str, list[Notifier]]:
    out: dict[str, list[Notifier]] = {}
    for spec in config.receivers:
        counts: dict[str, int] = {}
        notifiers = []
        for kind, cfg in spec.integrations:
            idx = counts.get(kind, 0)
            counts[kind] = idx + 1
            notifiers.append(PLUGINS[kind](cfg, spec.name, idx))
        out[spec.name] = notifiers
    return out


#: Longest owner or author, and comment, an ack or a silence keeps.
MAX_NAME_CHARS, MAX_COMMENT_CHARS = 200, 2000


class NotifyService:
    def __init__(self, config: NotifyConfig, db: StateDB, history: HistorySink, metrics: NotifyMetrics | None = None,
                 retry_policy: RetryPolicy | None = None, notifiers: dict[str, list[Notifier]] | None = None) -> None:
        self.config = config
        self.db = db
        self.history = history
        self.metrics = metrics or NotifyMetrics()
        self.store = AlertStore(db)
        self.nflog = NotificationLog(db)
        self.silences = Silences(db)
        self.acks = Acks(db)
        self.inhibitor = Inhibitor(config.inhibit_rules)
        self.notifiers = notifiers if notifiers is not None else build_notifiers(config)
        self.pipeline = DeliveryPipeline(
            self.notifiers, MuteStage(self.silences, self.inhibitor, self.metrics), DedupStage(self.nflog, self.acks),
            RetryStage(retry_policy or RetryPolicy(), history, self.metrics), self.nflog, self.metrics,
            external_url=config.global_.external_url)
        self.dispatcher = Dispatcher(build_routes(config), self.pipeline.flush, self._finished)

    def restore(self) -> int:
        """Put the alerts persisted by a previous run back into their groups (call on the loop)."""
        alerts = list(self.store.active.values())
        for a in alerts:
            self.inhibitor.observe(a)
        for a in alerts:
            self.dispatcher.insert(a)
        self._gauges()
        return len(alerts)

    def ingest(self, alerts: list[Alert]) -> int:
        """Durably record a batch, then hand the changes to their groups. Returns how many changed."""
        changed = self.store.apply(alerts)
        for a in changed:
            self.inhibitor.observe(a)
        for a in changed:
            self.dispatcher.insert(a)
        self._gauges()
        return len(changed)

    def _finished(self, fingerprints: list[str]) -> None:
        self.store.mark_done(fingerprints)
        self.acks.forget([fp for fp in fingerprints if fp not in self.store.active])
        self._gauges()

    def _gauges(self) -> None:
        self.metrics.active_alerts.set(len(self.store.active))
        self.metrics.groups.set(len(self.dispatcher.groups))

    # -- silences --------------------------------------------------------------------------
    def create_silence(self, matchers: list[Matcher], ends_at: float, created_by: str, comment: str,
                       starts_at: float | None = None) -> Silence:
        try:
            created_by = plain_text("created_by", created_by, MAX_NAME_CHARS)
            comment = plain_text("comment", comment, MAX_COMMENT_CHARS)
        except ValueError as e:
            raise SilenceError(str(e)) from None
        s = self.silences.create(matchers, ends_at, created_by, comment, starts_at=starts_at)
        self.history.publish(SILENCES, s.history_row("created"), key=s.id)
        return s

    def expire_silence(self, silence_id: str) -> Silence:
        s = self.silences.expire(silence_id)
        self.history.publish(SILENCES, s.history_row("expired"), key=s.id)
        self.dispatcher.reevaluate()
        return s

    # -- acks ------------------------------------------------------------------------------
    def ack(self, fingerprint: str, owner: str, comment: str = "") -> Ack:
        try:
            owner = plain_text("owner", owner, MAX_NAME_CHARS)
            comment = plain_text("comment", comment, MAX_COMMENT_CHARS)
        except ValueError as e:
            raise AckError(str(e)) from None
        alert = self.store.active.get(fingerprint)
        a = self.acks.ack(alert, fingerprint, owner, comment)
        self.history.publish(ACKS, self._ack_row("ack", a, alert), key=fingerprint)
        return a

    def unack(self, fingerprint: str, owner: str = "") -> Ack:
        a = self.acks.unack(fingerprint, owner)
        alert = self.store.active.get(fingerprint)
        row = self._ack_row("unack", a, alert)
        row.update(ts=time.time(), owner=owner or a.owner)
        self.history.publish(ACKS, row, key=fingerprint)
        return a

    @staticmethod
    def _ack_row(action: str, a: Ack, alert: Alert | None) -> dict:
        labels = alert.labels if alert else {}
        return {"ts": a.acked_at, "fingerprint": a.fingerprint, "action": action, "owner": a.owner,
                "comment": a.comment, "starts_at": a.starts_at, "alertname": labels.get("alertname", ""),
                "node": labels.get("node", ""), "labels": dict(labels)}

    # -- views -----------------------------------------------------------------------------
    def alerts_view(self, now: float | None = None) -> list[dict]:
        now = time.time() if now is None else now
        out = []
        for a in sorted(self.store.active.values(), key=lambda a: a.starts_at):
            ack = self.acks.for_alert(a)
            out.append({
                "fingerprint": a.fingerprint, "status": a.status, "labels": a.labels, "annotations": a.annotations,
                "starts_at": a.starts_at, "ends_at": a.ends_at,
                "silenced_by": self.silences.muting(a.labels, now) if a.firing else [],
                "inhibited_by": (self.inhibitor.inhibited_by(a.labels, a.fingerprint) or "") if a.firing else "",
                "acked_by": ack.owner if ack else "", "acked_at": ack.acked_at if ack else None,
                "groups": [g.key for g in self.dispatcher.groups_of(a.fingerprint)],
            })
        return out

    async def close(self) -> None:
        await self.dispatcher.stop()
        self.nflog.flush()
        for ns in self.notifiers.values():
            for n in ns:
                await n.close()
