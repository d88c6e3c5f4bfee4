"""Receiver plugins, one folder each (config + notifier), registered by config key.

A receiver in the YAML lists integrations under ``<kind>_configs``, as in
Alertmanager: ``webhook_configs``, ``slack_configs``, ``pagerduty_configs``,
``email_configs``, ``alertmanager_configs``, ``log_configs``.
"""

from __future__ import annotations

from pipelines.notify.receivers.base import Notification, Notifier, NotifyError, ReceiverConfig
from pipelines.notify.receivers.alertmanager import AlertmanagerNotifier
from pipelines.notify.receivers.email import EmailNotifier
from pipelines.notify.receivers.log import LogNotifier
from pipelines.notify.receivers.pagerduty import PagerDutyNotifier
from pipelines.notify.receivers.slack import SlackNotifier
from pipelines.notify.receivers.webhook import WebhookNotifier

#: kind -> notifier class; the YAML key is ``f"{kind}_configs"``.
PLUGINS: dict[str, type[Notifier]] = {n.kind: n for n in (
    WebhookNotifier, SlackNotifier, PagerDutyNotifier, EmailNotifier, AlertmanagerNotifier, LogNotifier)}


def register(notifier: type[Notifier]) -> None:
    """Add a receiver plugin from outside this package."""
    PLUGINS[notifier.kind] = notifier


__all__ = ["PLUGINS", "Notification", "Notifier", "NotifyError", "ReceiverConfig", "register"]
