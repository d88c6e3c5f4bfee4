"""Slack receiver settings (an incoming webhook).

>>> SlackConfig(api_url="https://hooks.slack.com/services/T/B/x").channel
''
"""

from __future__ import annotations

from pydantic import SecretStr, field_validator

from pipelines.notify.receivers.base import ReceiverConfig


class SlackConfig(ReceiverConfig):
    #: The incoming-webhook URL; it is the credential, so it is a secret.
    api_url: SecretStr
    channel: str = ""
    username: str = "gpuwatch"
    icon_emoji: str = ":rotating_light:"
    rate_limit: float = 1.0  # Slack allows about one message per second per webhook
    rate_burst: int = 5

    @field_validator("api_url")
    @classmethod
    def _http(cls, v: SecretStr) -> SecretStr:
        if not v.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("slack api_url must be the incoming webhook URL (https://hooks.slack.com/services/...)")
        return v
