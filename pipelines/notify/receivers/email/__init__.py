"""Email receiver plugin (``email_configs``)."""

from pipelines.notify.receivers.email.config import EmailConfig
from pipelines.notify.receivers.email.notifier import EmailNotifier

__all__ = ["EmailConfig", "EmailNotifier"]
