"""Webhook receiver plugin (``webhook_configs``)."""

from pipelines.notify.receivers.webhook.config import WebhookConfig
from pipelines.notify.receivers.webhook.notifier import WebhookNotifier, sign

__all__ = ["WebhookConfig", "WebhookNotifier", "sign"]
