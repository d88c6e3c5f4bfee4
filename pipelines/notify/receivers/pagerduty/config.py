"""PagerDuty receiver settings (Events API v2).

>>> PagerDutyConfig(routing_key="R" * 32).url
'https://events.pagerduty.com/v2/enqueue'
"""

from __future__ import annotations

from pydantic import SecretStr, field_validator

from pipelines.notify.receivers.base import ReceiverConfig


class PagerDutyConfig(ReceiverConfig):
    #: The integration's routing key (Events API v2), a secret.
    routing_key: SecretStr
    #: Overridable for a proxy or a test server.
    url: str = "https://events.pagerduty.com/v2/enqueue"
    source: str = "gpuwatch"
    client: str = "gpuwatch"
    rate_limit: float = 2.0
    rate_burst: int = 10

    @field_validator("routing_key")
    @classmethod
    def _key(cls, v: SecretStr) -> SecretStr:
        if len(v.get_secret_value()) != 32:
            raise ValueError("pagerduty routing_key must be the 32-character Events API v2 integration key")
        return v

    @field_validator("url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("pagerduty url must start with http:// or https://")
        return v
