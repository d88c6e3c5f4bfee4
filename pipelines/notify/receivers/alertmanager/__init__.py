"""Alertmanager forwarding plugin (``alertmanager_configs``)."""

from pipelines.notify.receivers.alertmanager.config import AlertmanagerConfig
from pipelines.notify.receivers.alertmanager.notifier import AlertmanagerNotifier

__all__ = ["AlertmanagerConfig", "AlertmanagerNotifier"]
