"""Log receiver: writes each notification to the worker's log (and stdout in the demo).

Useful as a second receiver that always works, so an operator can see what the
worker would have sent even when every remote receiver is down.
"""

from __future__ import annotations

import logging

from pipelines.notify.payload import body_lines, title
from pipelines.notify.receivers.base import Notification, Notifier
from pipelines.notify.receivers.log.config import LogConfig

log = logging.getLogger("gpuwatch.notify.log_receiver")


class LogNotifier(Notifier):
    kind = "log"
    config_model = LogConfig
    config: LogConfig

    async def notify(self, n: Notification) -> None:
        text = title(n) + " " + "; ".join(line.strip() for line in body_lines(n) if line.startswith("- "))
        log.log(logging.getLevelName(self.config.level), "notify %s: %s", self.receiver, text)
