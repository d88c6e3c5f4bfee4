"""PagerDuty receiver plugin (``pagerduty_configs``)."""

from pipelines.notify.receivers.pagerduty.config import PagerDutyConfig
from pipelines.notify.receivers.pagerduty.notifier import PagerDutyNotifier, dedup_key

__all__ = ["PagerDutyConfig", "PagerDutyNotifier", "dedup_key"]
