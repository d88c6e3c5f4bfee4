"""Slack receiver plugin (``slack_configs``)."""

from pipelines.notify.receivers.slack.config import SlackConfig
from pipelines.notify.receivers.slack.notifier import SlackNotifier

__all__ = ["SlackConfig", "SlackNotifier"]
