"""Settings of the notification worker: where alerts come from, where state lives.

Read once per process from ``GPUWATCH_*`` variables (``GPUWATCH_NOTIFY_*`` for
what is the worker's own); the CLI's flags override them.

>>> s = NotifySettings(home="/tmp/gw", notify_alerts_topic="my.alerts", _env_file=None)
>>> s.alerts_topic(), s.history_topic()
('my.alerts', 'gpuwatch.notifications.v1')
>>> s.consumer_group()
'gpuwatch-notify.my.alerts'
>>> NotifySettings(topic_prefix="t1", _env_file=None).alerts_topic()
't1.gpuwatch.alerts.v1'
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from pipelines.settings import CommonSettings
from schemas.topics import ALERTS, DEADLETTER, NOTIFICATIONS


class NotifySettings(CommonSettings):
    #: Alertmanager-style YAML with route, receivers and inhibit_rules.
    notify_config: Path | None = None
    #: Quick mode without a file: webhooks that receive every alert (JSON list in the env).
    notify_webhook_urls: list[str] = Field(default_factory=list)
    notify_webhook_secret: SecretStr | None = None
    #: Explicit topic names win; otherwise the contract's name with ``GPUWATCH_TOPIC_PREFIX`` (if set).
    notify_alerts_topic: str = ""
    notify_history_topic: str = ""
    notify_deadletter_topic: str = ""
    #: Consumer group for committed offsets; empty derives one from the alerts topic, so two
    #: deployments on one broker (or two tests) never share offsets by accident.
    notify_group_id: str = ""
    #: Where a consumer group with no committed offset starts: 'earliest' so nothing is missed.
    notify_offset_reset: Literal["earliest", "latest"] = "earliest"
    #: HTTP API (silences, acks, alerts, metrics). Port 0 picks a free one.
    notify_listen: str = "127.0.0.1:9096"
    #: Bearer token the HTTP API requires for changes (silences, acks); none means loopback trust.
    notify_api_token: SecretStr | None = None
    #: Link to this deployment put in notifications (Alertmanager's externalURL).
    notify_external_url: str = ""

    @field_validator("notify_listen")
    @classmethod
    def _host_port(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"GPUWATCH_NOTIFY_LISTEN must be host:port (e.g. 127.0.0.1:9096), got {v!r}")
        return v

    def _topic(self, explicit: str, default: str) -> str:
        return explicit or self.topic(default)

    def alerts_topic(self) -> str:
        return self._topic(self.notify_alerts_topic, ALERTS.name)

    def history_topic(self) -> str:
        return self._topic(self.notify_history_topic, NOTIFICATIONS.name)

    def deadletter_topic(self) -> str:
        return self._topic(self.notify_deadletter_topic, DEADLETTER.name)

    def consumer_group(self) -> str:
        return self.notify_group_id or f"gpuwatch-notify.{self.alerts_topic()}"

    def state_dir(self) -> Path:
        """Notification log, silences and acks: ``$GPUWATCH_HOME/notify``."""
        return self.home / "notify"

    def listen_host_port(self) -> tuple[str, int]:
        host, _, port = self.notify_listen.rpartition(":")
        return host.strip("[]"), int(port)
