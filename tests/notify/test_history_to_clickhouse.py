"""The notifier's history reaches ClickHouse through the lead's pipeline (real broker, real chDB)."""

from __future__ import annotations

import time

import httpx
import pytest
from notify_helpers import AlertPublisher

from schemas.topics import ALERTS
from tests.stack import Stack, wait_for

pytestmark = pytest.mark.integration


def test_attempts_silences_and_acks_are_stored(bootstrap, tmp_path, topic_prefix, http_receiver, alert_event):
    hook = http_receiver(script=[503])
    stack = Stack(bootstrap=bootstrap, home=tmp_path / "home", prefix=topic_prefix)
    try:
        stack.start_pipeline()
        notifier = stack.spawn("notify", "notify", "--webhook", hook.url(), "--listen", "127.0.0.1:0")
        notifier.wait_for_line("notify: ready")
        api = notifier.log_path.read_text().split(" api ")[1].split(",")[0]
        ev = alert_event(node="n-hist")
        AlertPublisher(bootstrap, stack.topic(ALERTS.name)).send(ev)
        hook.wait_for(1, timeout=30)
        httpx.post(f"{api}/api/v1/silences", json={"matchers": ['node="other"'], "duration": "1h",
                                                   "created_by": "alice", "comment": "c"}).raise_for_status()
        httpx.post(f"{api}/api/v1/acks", json={"fingerprint": ev.fingerprint, "owner": "bob"}).raise_for_status()

        sql = ("SELECT outcome, attempt, has(fingerprints, '{fp}') AS has_fp, toUnixTimestamp64Milli(ts) AS ms "
               "FROM gpuwatch.notification_attempts WHERE integration = 'default/webhook/0' ORDER BY ts")
        rows = wait_for(lambda: len(r := stack.query(sql.format(fp=ev.fingerprint))) >= 2 and r, 60,
                        what="notification attempts in ClickHouse")
        assert [(r["outcome"], r["attempt"], r["has_fp"]) for r in rows] == [
            ("failed_recoverable", 1, 1), ("delivered", 2, 1)]
        assert abs(rows[0]["ms"] / 1000 - time.time()) < 120  # float epoch seconds became DateTime64
        acks = wait_for(lambda: stack.query("SELECT owner, fingerprint, node, "
                                            "toUnixTimestamp64Milli(starts_at) AS s FROM gpuwatch.alert_acks"),
                        30, what="ack row")
        assert acks[0]["owner"] == "bob" and acks[0]["node"] == "n-hist"
        assert abs(acks[0]["s"] / 1000 - ev.starts_at) < 0.01
        sil = wait_for(lambda: stack.query("SELECT created_by, action, matchers FROM gpuwatch.silences"), 30,
                       what="silence row")
        assert sil == [{"created_by": "alice", "action": "created", "matchers": 'node="other"'}]
    finally:
        stack.stop_all()
