"""Webhook receiver settings.

>>> cfg = WebhookConfig(url="http://127.0.0.1:9/hook", hmac_secret="k")
>>> cfg.signature_header, cfg.max_alerts
('X-Gpuwatch-Signature', 0)
>>> from pipelines.notify.config import describe_validation_error
>>> try:
...     WebhookConfig(url="ftp://token@x")
... except ValueError as e:
...     print(describe_validation_error(e))
url: webhook url must start with http:// or https://
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from pipelines.notify.receivers.base import ReceiverConfig


class WebhookConfig(ReceiverConfig):
    #: A secret: webhook URLs often carry a token in the path or query.
    url: SecretStr
    #: Key for the HMAC-SHA256 signature header; unset sends no signature.
    hmac_secret: SecretStr | None = None
    signature_header: str = "X-Gpuwatch-Signature"
    timestamp_header: str = "X-Gpuwatch-Timestamp"
    #: Most alerts in one payload (0 = all); the rest are counted in truncatedAlerts.
    max_alerts: int = Field(default=0, ge=0)
    #: Webhooks are machine-to-machine: a generous default that still stops a runaway storm.
    rate_limit: float = 200.0
    rate_burst: int = 200

    @field_validator("url")
    @classmethod
    def _http(cls, v: SecretStr) -> SecretStr:
        if not v.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("webhook url must start with http:// or https://")
        return v
