"""Forwarding to a real Prometheus Alertmanager (Debian's prometheus-alertmanager binary).

Install it with ``infra/alertmanager/install.sh`` (``make test`` does).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time

import httpx
import pytest
from notify_helpers import free_port, make_event, make_notification

from pipelines.notify.receivers.alertmanager import AlertmanagerConfig, AlertmanagerNotifier

AM = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
# Under CI (CI=true) a missing Alertmanager fails these tests: a green run must have run them.
pytestmark = pytest.mark.skipif(AM is None and os.environ.get("CI") != "true",
                                reason="prometheus-alertmanager is not installed; run infra/alertmanager/install.sh")


@pytest.fixture
def alertmanager(tmp_path, http_receiver):
    """A real Alertmanager whose own webhook receiver is a local HTTP server."""
    if AM is None:
        pytest.fail("CI=true and prometheus-alertmanager is not installed (infra/alertmanager/install.sh failed)")
    downstream = http_receiver()
    (tmp_path / "am.yml").write_text(f"""
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: {downstream.url('/from-am')}
        send_resolved: true
""")
    port = free_port()
    proc = subprocess.Popen([AM, f"--config.file={tmp_path / 'am.yml'}", f"--storage.path={tmp_path / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
                             "--log.level=warn"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail(f"alertmanager did not start: {proc.stderr.read().decode()[-2000:]}")
    yield url, downstream
    proc.terminate()
    proc.wait(10)


def _forward(url: str, n) -> None:
    async def go():
        notifier = AlertmanagerNotifier(AlertmanagerConfig(url=url), "am")
        try:
            await notifier.notify(n)
        finally:
            await notifier.close()
    asyncio.run(go())


def _active(url: str) -> list[dict]:
    return httpx.get(f"{url}/api/v2/alerts", params={"active": "true"}, timeout=5).json()


def test_alerts_fire_and_resolve_in_a_real_alertmanager(alertmanager):
    url, downstream = alertmanager
    ev = make_event(node="gpu-01", gpu="4")
    _forward(url, make_notification(ev))
    (am_alert,) = _active(url)
    assert am_alert["labels"] == {"alertname": "GpuHot", "node": "gpu-01", "gpu": "4", "severity": "warning"}
    assert am_alert["annotations"]["summary"] == "GpuHot on gpu-01"
    assert am_alert["status"]["state"] == "active"
    got = downstream.wait_for(1, timeout=15)  # Alertmanager's own routing notified its receiver
    assert got and got[0].json()["status"] == "firing" and got[0].path == "/from-am"

    _forward(url, make_notification(make_event("resolved", node="gpu-01", gpu="4", starts_at=ev.starts_at)))
    assert _active(url) == []
    got = downstream.wait_for(2, timeout=15)
    assert [r.json()["status"] for r in got][-1] == "resolved"


def test_a_bad_alert_is_refused_without_retry(alertmanager):
    from pipelines.notify.receivers.base import NotifyError

    url, _ = alertmanager
    n = make_notification(make_event(node="n1"))
    n.alerts[0].labels["bad label"] = "x"  # not a valid Prometheus label name
    with pytest.raises(NotifyError) as e:
        _forward(url, n)
    assert e.value.recoverable is False and "400" in str(e.value)
