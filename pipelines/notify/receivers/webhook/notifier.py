"""Webhook receiver: Alertmanager's v4 JSON, signed with HMAC-SHA256.

The signature covers the timestamp and the body, ``HMAC(key, f"{ts}." + body)``,
so a receiver can refuse both forged and replayed requests::

    X-Gpuwatch-Timestamp: 1718000000
    X-Gpuwatch-Signature: sha256=<hex digest>

Every request carries ``Idempotency-Key`` (also ``idempotencyKey`` in the
body): the same for each retry of one notification, so a receiver can drop a
request it already processed (see :attr:`Notification.idempotency_key`).
"""

from __future__ import annotations

import hashlib
import hmac
import time

import orjson

from pipelines.notify.payload import webhook_payload
from pipelines.notify.receivers.base import HttpNotifier, Notification
from pipelines.notify.receivers.webhook.config import WebhookConfig


def sign(key: bytes, timestamp: str, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    return "sha256=" + hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class WebhookNotifier(HttpNotifier):
    kind = "webhook"
    config_model = WebhookConfig
    config: WebhookConfig

    def secrets(self) -> list[str]:
        out = [self.config.url.get_secret_value()]
        if self.config.hmac_secret is not None:
            out.append(self.config.hmac_secret.get_secret_value())
        return out

    def render(self, n: Notification) -> tuple[bytes, dict[str, str]]:
        body = orjson.dumps(webhook_payload(n, self.config.max_alerts))
        headers: dict[str, str] = {"Idempotency-Key": n.idempotency_key}
        if self.config.hmac_secret is not None:
            ts = str(int(time.time()))
            headers[self.config.timestamp_header] = ts
            headers[self.config.signature_header] = sign(
                self.config.hmac_secret.get_secret_value().encode(), ts, body)
        return body, headers

    async def notify(self, n: Notification) -> None:
        body, headers = self.render(n)
        await self.post(self.config.url.get_secret_value(), body, headers, ok=())
