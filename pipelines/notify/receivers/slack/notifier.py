"""Slack receiver: one message per notification through an incoming webhook.

The message is Slack's documented incoming-webhook JSON: ``text`` (also the
notification fallback) and one attachment coloured by status. Slack answers
``200 ok``; 4xx answers (``invalid_payload``, ``no_service``) are not worth
retrying, 429 and 5xx are.
"""

from __future__ import annotations

import orjson

from pipelines.notify.payload import body_lines, title
from pipelines.notify.receivers.base import HttpNotifier, Notification
from pipelines.notify.receivers.slack.config import SlackConfig


class SlackNotifier(HttpNotifier):
    kind = "slack"
    config_model = SlackConfig
    config: SlackConfig

    def secrets(self) -> list[str]:
        return [self.config.api_url.get_secret_value()]

    def render(self, n: Notification) -> dict:
        head = title(n)
        text = "\n".join(body_lines(n))
        msg = {
            "text": head,
            "username": self.config.username,
            "icon_emoji": self.config.icon_emoji,
            "attachments": [{
                "color": "danger" if n.status == "firing" else "good",
                "title": head,
                "title_link": n.external_url or None,
                "text": text[:7000],
                "fallback": head,
                "mrkdwn_in": ["text"],
            }],
        }
        if self.config.channel:
            msg["channel"] = self.config.channel
        if not n.external_url:
            del msg["attachments"][0]["title_link"]
        return msg

    async def notify(self, n: Notification) -> None:
        await self.post(self.config.api_url.get_secret_value(), orjson.dumps(self.render(n)), {}, ok=(200,))
