"""``gpuwatch silence`` and ``gpuwatch ack`` against a running worker on the real broker, and its HTTP API."""

from __future__ import annotations

import json
import signal
import time

import httpx
import pytest
from notify_helpers import eventually as _wait
from notify_helpers import read_history
from notify_helpers import run_cli as _cli

pytestmark = pytest.mark.integration


def test_silence_and_ack_from_the_cli(http_receiver, publisher, notify_worker, alert_event, notify_cmd,
                                      subprocess_env, bootstrap, notify_topics):
    hook = http_receiver()
    worker = notify_worker("--webhook", hook.url())
    env = subprocess_env  # same GPUWATCH_HOME: the CLI finds the worker's API by itself

    made = _cli(notify_cmd, env, "silence", "create", 'node="n-silenced"', "--duration", "10m",
                "--author", "alice", "--comment", "swapping GPU 3")
    assert made.returncode == 0, made.stderr
    silence_id = made.stdout.strip()
    listed = _cli(notify_cmd, env, "silence", "--json", "list")
    (s,) = json.loads(listed.stdout)
    assert (s["id"], s["state"], s["created_by"], s["comment"]) == (silence_id, "active", "alice", "swapping GPU 3")

    quiet, loud = alert_event(node="n-silenced"), alert_event(node="n-loud")
    publisher.send(quiet, loud)
    assert _wait(lambda: len(hook.received) >= 1)
    time.sleep(1.2)
    assert [r.json()["alerts"][0]["labels"]["node"] for r in hook.received] == ["n-loud"]

    assert _cli(notify_cmd, env, "silence", "expire", silence_id[:8]).returncode == 0
    assert _wait(lambda: len(hook.received) >= 2)
    assert hook.received[1].json()["alerts"][0]["labels"]["node"] == "n-silenced"
    assert _cli(notify_cmd, env, "silence", "list").stdout.strip() == "no silences"

    acked = _cli(notify_cmd, env, "ack", loud.fingerprint, "--owner", "bob", "--comment", "mine")
    assert acked.returncode == 0 and "acked" in acked.stdout
    listing = _cli(notify_cmd, env, "ack", "--list").stdout
    row = next(ln for ln in listing.splitlines() if ln.startswith(loud.fingerprint))
    assert row.split()[1:3] == ["GpuHot", "n-loud"] and row.endswith("acked by bob")
    assert _cli(notify_cmd, env, "unack", loud.fingerprint, "--owner", "bob").returncode == 0

    bad = _cli(notify_cmd, env, "ack", "0123456789abcdef", "--owner", "bob")
    assert bad.returncode == 2 and "no firing alert" in bad.stderr
    bad = _cli(notify_cmd, env, "silence", "create", "node=~", "--comment", "x")
    assert bad.returncode == 2 and "every alert" in bad.stderr

    rows = read_history(bootstrap, notify_topics["history"], want=8)
    assert [r["action"] for r in rows if r["table"] == "silences"] == ["created", "expired"]
    assert [(r["action"], r["owner"]) for r in rows if r["table"] == "alert_acks"] == [("ack", "bob"),
                                                                                       ("unack", "bob")]

    worker.proc.send_signal(signal.SIGINT)  # Ctrl-C stops it cleanly too
    assert worker.proc.wait(20) == 0


def test_http_api(http_receiver, publisher, notify_worker, alert_event):
    hook = http_receiver()
    worker = notify_worker("--webhook", hook.url(), env={"GPUWATCH_NOTIFY_API_TOKEN": "t0ken-abc"})
    api = worker.api_url
    ev = alert_event(node="n-api")
    publisher.send(ev)
    assert _wait(lambda: len(hook.received) == 1)

    assert httpx.get(f"{api}/-/ready").status_code == 200
    (a,) = httpx.get(f"{api}/api/v1/alerts").json()["alerts"]
    assert a["fingerprint"] == ev.fingerprint and a["acked_by"] == "" and a["silenced_by"] == []

    body = {"matchers": ['node="n-api"'], "duration": "1h", "created_by": "eve", "comment": "test"}
    assert httpx.post(f"{api}/api/v1/silences", json=body).status_code == 401  # token required for changes
    auth = {"Authorization": "Bearer t0ken-abc"}
    r = httpx.post(f"{api}/api/v1/silences", json=body, headers=auth)
    assert r.status_code == 201
    sid = r.json()["silence"]["id"]
    (a,) = httpx.get(f"{api}/api/v1/alerts").json()["alerts"]
    assert a["silenced_by"] == [sid]
    assert httpx.delete(f"{api}/api/v1/silences/{sid}", headers=auth).json()["silence"]["state"] == "expired"
    assert httpx.delete(f"{api}/api/v1/silences/{sid}", headers=auth).status_code == 409

    r = httpx.post(f"{api}/api/v1/acks", json={"fingerprint": ev.fingerprint, "owner": "eve"}, headers=auth)
    assert r.status_code == 201 and r.json()["ack"]["owner"] == "eve"
    assert httpx.get(f"{api}/api/v1/alerts").json()["alerts"][0]["acked_by"] == "eve"
    assert httpx.post(f"{api}/api/v1/silences", json={"matchers": ["x=~(("], "duration": "1h",
                                                       "created_by": "e", "comment": "c"},
                      headers=auth).status_code == 400
    metrics = httpx.get(f"{api}/metrics").text
    assert "gpuwatch_notify_events_received_total 1.0" in metrics
    assert 'gpuwatch_notify_notifications_total{integration="default/webhook/0",outcome="delivered"} 1.0' in metrics
    assert "t0ken-abc" not in worker.log()
