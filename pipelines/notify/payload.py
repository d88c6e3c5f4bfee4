"""What a notification says: the Alertmanager v4 webhook document and short human texts.

Every receiver renders from these, so Slack, email and PagerDuty all describe a
group the same way, and the webhook is byte-compatible with tools written for
Alertmanager's webhook.
"""

from __future__ import annotations

from pipelines.notify.alert import Alert, rfc3339
from pipelines.notify.notification import Notification


def incident_url(external_url: str, fingerprint: str) -> str:
    """The incident's page in the console, when the notifier knows the console's address.

    >>> incident_url("http://127.0.0.1:6066/console/", "9ff6b301788c9c56")
    'http://127.0.0.1:6066/console/#incident=9ff6b301788c9c56'
    >>> incident_url("", "9ff6b301788c9c56")
    ''
    """
    return f"{external_url.rstrip('/')}/#incident={fingerprint}" if external_url else ""


def alert_document(a: Alert, external_url: str = "") -> dict:
    """One alert in Alertmanager's webhook shape; ``generatorURL`` links to its incident page."""
    return {
        "status": a.status,
        "labels": dict(a.labels),
        "annotations": dict(a.annotations),
        "startsAt": rfc3339(a.starts_at),
        "endsAt": rfc3339(a.ends_at if not a.firing else None),
        "generatorURL": a.generator_url or incident_url(external_url, a.fingerprint),
        "fingerprint": a.fingerprint,
    }


def webhook_payload(n: Notification, max_alerts: int = 0) -> dict:
    """Alertmanager webhook payload, version 4; ``max_alerts`` > 0 truncates the list."""
    alerts = n.alerts
    truncated = n.truncated
    if max_alerts and len(alerts) > max_alerts:
        truncated += len(alerts) - max_alerts
        alerts = alerts[:max_alerts]
    return {
        "version": "4",
        "groupKey": n.group_key,
        "idempotencyKey": n.idempotency_key,
        "truncatedAlerts": truncated,
        "status": n.status,
        "receiver": n.receiver,
        "groupLabels": dict(n.group_labels),
        "commonLabels": n.common_labels,
        "commonAnnotations": n.common_annotations,
        "externalURL": n.external_url,
        "alerts": [alert_document(a, n.external_url) for a in alerts],
    }


def title(n: Notification) -> str:
    """One line: ``[FIRING:2] GpuHot node=gpu-01``, as Alertmanager's default templates say it."""
    counts = f"{n.status.upper()}:{len(n.firing)}" if n.status == "firing" else "RESOLVED"
    labels = n.group_labels or {"alertname": n.common_labels.get("alertname", "")}
    name = labels.get("alertname") or n.common_labels.get("alertname", "alerts")
    rest = " ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "alertname")
    return f"[{counts}] {name}" + (f" {rest}" if rest else "")


def body_lines(n: Notification) -> list[str]:
    """Plain text, one block per alert: labels, summary/description, times."""
    lines: list[str] = []
    for a in n.alerts:
        summary = a.annotations.get("summary") or a.annotations.get("description") or ""
        labels = ", ".join(f"{k}={v}" for k, v in sorted(a.labels.items()))
        lines.append(f"- [{a.status}] {labels}")
        if summary:
            lines.append(f"  {summary}")
        lines.append(f"  started {rfc3339(a.starts_at)}" + (f", ended {rfc3339(a.ends_at)}"
                                                           if not a.firing and a.ends_at else ""))
    if n.external_url:
        lines.append(f"Source: {n.external_url}")
    return lines
