"""Settings for forwarding to a Prometheus Alertmanager (its v2 alerts API).

>>> AlertmanagerConfig(url="http://127.0.0.1:9093").alerts_url()
'http://127.0.0.1:9093/api/v2/alerts'
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr, field_validator

from pipelines.notify.durations import parse_duration
from pipelines.notify.receivers.base import ReceiverConfig


class AlertmanagerConfig(ReceiverConfig):
    #: Base URL of the Alertmanager (may carry basic-auth credentials; treated as secret in logs).
    url: str
    basic_auth_password: SecretStr | None = None
    basic_auth_username: str = ""
    #: Alertmanager resolves an alert it has not heard about for this long, so a firing alert is
    #: sent with ``endsAt = now + firing_ttl``. Keep it longer than the route's repeat_interval.
    firing_ttl: float = 5 * 3600.0

    @field_validator("firing_ttl", mode="before")
    @classmethod
    def _dur(cls, v: Any) -> float:
        return parse_duration(v)

    @field_validator("url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("alertmanager url must start with http:// or https:// (e.g. http://am:9093)")
        return v.rstrip("/")

    def alerts_url(self) -> str:
        return f"{self.url}/api/v2/alerts"
