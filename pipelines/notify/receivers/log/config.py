"""Log receiver settings: where in the log a notification is written."""

from __future__ import annotations

from typing import Literal

from pipelines.notify.receivers.base import ReceiverConfig


class LogConfig(ReceiverConfig):
    level: Literal["DEBUG", "INFO", "WARNING"] = "INFO"
    rate_limit: float = 1000.0
    rate_burst: int = 1000
