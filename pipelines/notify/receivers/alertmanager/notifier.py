"""Forward alerts to a real Prometheus Alertmanager, for sites whose routing lives there.

Posts Alertmanager's v2 ``postableAlerts``: labels, annotations, startsAt,
endsAt and generatorURL. A resolved alert is sent with its end time, which
resolves it in Alertmanager. Alertmanager answers 200; 400 means a bad alert
(not retried). Alertmanager itself deduplicates by labels; each request
also carries the notification's ``Idempotency-Key``.
"""

from __future__ import annotations

import base64
import time

import orjson

from pipelines.notify.alert import rfc3339
from pipelines.notify.receivers.alertmanager.config import AlertmanagerConfig
from pipelines.notify.receivers.base import HttpNotifier, Notification


class AlertmanagerNotifier(HttpNotifier):
    kind = "alertmanager"
    config_model = AlertmanagerConfig
    config: AlertmanagerConfig

    def secrets(self) -> list[str]:
        return [self.config.basic_auth_password.get_secret_value()] if self.config.basic_auth_password else []

    def render(self, n: Notification, now: float | None = None) -> list[dict]:
        now = time.time() if now is None else now
        out = []
        for a in n.alerts:
            ends = (now + self.config.firing_ttl) if a.firing else (a.ends_at or now)
            doc = {"labels": dict(a.labels), "annotations": dict(a.annotations),
                   "startsAt": rfc3339(a.starts_at), "endsAt": rfc3339(ends)}
            if a.generator_url:
                doc["generatorURL"] = a.generator_url
            out.append(doc)
        return out

    async def notify(self, n: Notification) -> None:
        headers = {"Idempotency-Key": n.idempotency_key}  # Alertmanager ignores it; a proxy in front may not
        if self.config.basic_auth_password is not None:
            cred = f"{self.config.basic_auth_username}:{self.config.basic_auth_password.get_secret_value()}"
            headers["Authorization"] = "Basic " + base64.b64encode(cred.encode()).decode()
        await self.post(self.config.alerts_url(), orjson.dumps(self.render(n)), headers, ok=(200,))
