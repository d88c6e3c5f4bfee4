"""Slack and PagerDuty plugins against local servers that check the payloads the real APIs expect.

The real services cannot be reached from the test machines, so the URLs are
pointed at a local HTTP server (both are overridable in config).
"""

from __future__ import annotations


import pytest
from notify_helpers import make_event, make_notification, send_once

from pipelines.notify.config import ConfigError, parse_config
from pipelines.notify.receivers.base import NotifyError
from pipelines.notify.receivers.pagerduty import PagerDutyConfig, PagerDutyNotifier, dedup_key
from pipelines.notify.receivers.slack import SlackConfig, SlackNotifier

KEY = "0123456789abcdef0123456789abcdef"


def test_slack_incoming_webhook_message(http_receiver):
    hook = http_receiver()
    cfg = SlackConfig(api_url=hook.url("/services/T000/B000/XXXX"), channel="#gpu-oncall")
    n = make_notification(make_event(node="n1"), make_event(node="n2"), external_url="https://gw.example")
    send_once(SlackNotifier(cfg, "slack"), n)
    (got,) = hook.received
    assert got.path == "/services/T000/B000/XXXX" and got.headers["content-type"] == "application/json"
    msg = got.json()
    assert msg["channel"] == "#gpu-oncall" and msg["text"] == "[FIRING:2] GpuHot"
    (att,) = msg["attachments"]
    assert att["color"] == "danger" and att["title_link"] == "https://gw.example"
    assert "node=n1" in att["text"] and "node=n2" in att["text"] and att["fallback"] == msg["text"]


def test_slack_resolved_is_green_and_4xx_is_final(http_receiver):
    hook = http_receiver(script=[200, 400])
    n = make_notification(make_event("resolved", node="n1"))
    send_once(SlackNotifier(SlackConfig(api_url=hook.url()), "slack"), n)
    assert hook.received[0].json()["attachments"][0]["color"] == "good"
    assert "channel" not in hook.received[0].json()
    with pytest.raises(NotifyError) as e:
        send_once(SlackNotifier(SlackConfig(api_url=hook.url()), "slack"), n)
    assert not e.value.recoverable


def test_pagerduty_trigger_then_resolve_share_a_dedup_key(http_receiver):
    pd = http_receiver(ok_status=202)
    cfg = PagerDutyConfig(routing_key=KEY, url=pd.url("/v2/enqueue"))
    gk = '{}:{alertname="GpuHot",node="n1"}'
    ev = make_event(severity="critical", node="n1", gpu="2")
    send_once(PagerDutyNotifier(cfg, "pd"), make_notification(ev, group_key=gk))
    send_once(PagerDutyNotifier(cfg, "pd"), make_notification(make_event("resolved", severity="critical", node="n1",
                                                                     gpu="2", starts_at=ev.starts_at), group_key=gk))
    trigger, resolve = (r.json() for r in pd.received)
    assert pd.received[0].path == "/v2/enqueue"
    assert trigger["routing_key"] == KEY and trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == resolve["dedup_key"] == dedup_key(gk) and len(trigger["dedup_key"]) == 64
    p = trigger["payload"]
    assert p["severity"] == "critical" and p["source"] == "n1" and p["class"] == "GpuHot" and p["component"] == "2"
    assert p["summary"].startswith("[FIRING:1] GpuHot") and p["timestamp"].endswith("Z")
    assert resolve == {"routing_key": KEY, "dedup_key": dedup_key(gk), "event_action": "resolve"}


def test_pagerduty_expects_202_and_429_is_retryable(http_receiver):
    pd = http_receiver(script=[429, 400])
    cfg = PagerDutyConfig(routing_key=KEY, url=pd.url())
    for recoverable in (True, False):
        with pytest.raises(NotifyError) as e:
            send_once(PagerDutyNotifier(cfg, "pd"), make_notification(make_event()))
        assert e.value.recoverable is recoverable and KEY not in str(e.value)


@pytest.mark.parametrize("item, message", [
    ({"routing_key": "short"}, "32-character"),
    ({"routing_key": KEY, "url": "events.pagerduty.com"}, "must start with http"),
])
def test_pagerduty_config_errors(item, message):
    with pytest.raises(ConfigError, match=message) as e:
        parse_config({"route": {"receiver": "p"}, "receivers": [{"name": "p", "pagerduty_configs": [item]}]})
    assert "short" not in str(e.value).replace("32-character", "")


def test_slack_config_refuses_a_non_url():
    with pytest.raises(ConfigError, match="incoming webhook URL"):
        parse_config({"route": {"receiver": "s"}, "receivers": [{"name": "s", "slack_configs": [{"api_url": "x"}]}]})
