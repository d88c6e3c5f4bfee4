"""PagerDuty receiver: Events API v2 ``trigger`` and ``resolve`` with a dedup key.

The dedup key is a hash of the group key, so every update of one group lands
on one PagerDuty incident and the resolution closes it. PagerDuty answers 202;
400 is a bad event (not retried), 429 and 5xx are retried.
"""

from __future__ import annotations

import hashlib

import orjson

from pipelines.notify.alert import rfc3339
from pipelines.notify.payload import body_lines, title
from pipelines.notify.receivers.base import HttpNotifier, Notification
from pipelines.notify.receivers.pagerduty.config import PagerDutyConfig

#: gpuwatch severities -> PagerDuty's (critical, error, warning, info).
SEVERITY = {"critical": "critical", "error": "error", "warning": "warning", "info": "info"}


def dedup_key(group_key: str) -> str:
    return hashlib.sha256(group_key.encode()).hexdigest()


class PagerDutyNotifier(HttpNotifier):
    kind = "pagerduty"
    config_model = PagerDutyConfig
    config: PagerDutyConfig

    def secrets(self) -> list[str]:
        return [self.config.routing_key.get_secret_value()]

    def render(self, n: Notification) -> dict:
        event = {"routing_key": self.config.routing_key.get_secret_value(), "dedup_key": dedup_key(n.group_key),
                 "event_action": "trigger" if n.status == "firing" else "resolve"}
        if n.status != "firing":
            return event
        severities = [a.labels.get("severity", "warning") for a in n.firing]
        worst = next((s for s in ("critical", "error", "warning", "info") if s in severities), "warning")
        common = n.common_labels
        event.update({
            "payload": {
                "summary": title(n)[:1024],
                "source": common.get("node") or self.config.source,
                "severity": SEVERITY.get(worst, "warning"),
                "timestamp": rfc3339(min(a.starts_at for a in n.firing)),
                "component": common.get("gpu", ""),
                "group": common.get("cluster", ""),
                "class": common.get("alertname", ""),
                "custom_details": {"firing": "\n".join(body_lines(n))[:8000], "num_firing": len(n.firing),
                                   "num_resolved": len(n.resolved), "group_labels": n.group_labels},
            },
            "client": self.config.client,
        })
        if n.external_url:
            event["client_url"] = n.external_url
        return event

    async def notify(self, n: Notification) -> None:
        await self.post(self.config.url, orjson.dumps(self.render(n)), {}, ok=(202,))
