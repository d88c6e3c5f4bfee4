"""Log receiver plugin (``log_configs``)."""

from pipelines.notify.receivers.log.config import LogConfig
from pipelines.notify.receivers.log.notifier import LogNotifier

__all__ = ["LogConfig", "LogNotifier"]
