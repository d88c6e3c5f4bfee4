"""The persisted state across restarts, the retry stage, and the modules' doctests (no broker)."""

from __future__ import annotations

import asyncio
import doctest
import importlib
import pkgutil
import time

import pytest
from notify_helpers import ServiceHarness, make_event, make_notification, webhook_config

import pipelines.notify
from pipelines.notify.history import MemoryHistory
from pipelines.notify.matchers import parse_matchers
from pipelines.notify.metrics import NotifyMetrics
from pipelines.notify.receivers.base import Notifier, NotifyError, ReceiverConfig
from pipelines.notify.stages import RetryPolicy, RetryStage
from pipelines.notify.state_db import StateDB, StateLockedError


def test_state_survives_a_restart_and_nothing_is_resent(http_receiver, tmp_path):
    hook = http_receiver()
    cfg = webhook_config(hook.url(), group_wait="0.1s", group_interval="0.3s")
    ev_sent, ev_pending = make_event(node="n1"), make_event(alertname="GpuEcc", node="n2")

    async def first_run():
        h = ServiceHarness(cfg, tmp_path)
        h.ingest(ev_sent)
        await asyncio.sleep(0.4)
        h.service.ack(ev_sent.fingerprint, "bob")
        s = h.service.create_silence(parse_matchers(['alertname="GpuEcc"']), time.time() + 600, "al", "x")
        h.ingest(ev_pending)  # silenced: pending, not sent
        await asyncio.sleep(0.4)
        await h.close()
        return s.id

    silence_id = asyncio.run(first_run())
    assert len(hook.received) == 1

    async def second_run():
        h = ServiceHarness(cfg, tmp_path)
        restored = h.service.restore()
        await asyncio.sleep(0.6)
        state = (restored, [s.id for s in h.service.silences.list(include_expired=False)],
                 [a.owner for a in h.service.acks.list()], len(hook.received))
        h.service.expire_silence(silence_id)
        await asyncio.sleep(0.5)
        await h.close()
        return state

    restored, silences, owners, sent_after_restart = asyncio.run(second_run())
    assert (restored, silences, owners, sent_after_restart) == (2, [silence_id], ["bob"], 1)
    assert [r.json()["alerts"][0]["labels"]["alertname"] for r in hook.received] == ["GpuHot", "GpuEcc"]


def test_one_worker_per_state_directory(tmp_path):
    db = StateDB(tmp_path)
    try:
        with pytest.raises(StateLockedError, match="another gpuwatch notify worker"):
            StateDB(tmp_path)
    finally:
        db.close()
    StateDB(tmp_path).close()  # free again once the first has closed


class FlakyNotifier(Notifier):
    """Fails with the given errors in turn, then succeeds (a scripted receiver for the retry stage)."""

    kind = "flaky"
    config_model = ReceiverConfig

    def __init__(self, errors: list[NotifyError]) -> None:
        super().__init__(ReceiverConfig(rate_limit=1000, rate_burst=1000), "r")
        self.errors = errors
        self.calls: list[float] = []

    async def notify(self, n) -> None:
        self.calls.append(time.monotonic())
        if self.errors:
            raise self.errors.pop(0)


def _retry(notifier, window=5.0, policy=None):
    history = MemoryHistory()
    stage = RetryStage(policy or RetryPolicy(base_s=0.05, max_backoff_s=0.2), history, NotifyMetrics())
    ok = asyncio.run(stage.run(notifier, make_notification(make_event()), window))
    return ok, history.rows("notification_attempts")


def test_recoverable_errors_back_off_exponentially_then_succeed():
    n = FlakyNotifier([NotifyError("503", True)] * 3)
    ok, rows = _retry(n)
    assert ok and [r["outcome"] for r in rows] == ["failed_recoverable"] * 3 + ["delivered"]
    gaps = [b - a for a, b in zip(n.calls, n.calls[1:])]
    assert 0.02 <= gaps[0] <= 0.09 and 0.045 <= gaps[1] <= 0.15 and 0.09 <= gaps[2] <= 0.27  # d/2..d, d doubles


def test_permanent_errors_are_not_retried():
    n = FlakyNotifier([NotifyError("400 bad payload", False)])
    ok, rows = _retry(n)
    assert not ok and len(n.calls) == 1 and rows[0]["outcome"] == "failed" and rows[0]["recoverable"] == 0


def test_retry_gives_up_when_its_window_closes():
    n = FlakyNotifier([NotifyError("timeout", True)] * 100)
    t0 = time.monotonic()
    ok, rows = _retry(n, window=0.5)
    assert not ok and time.monotonic() - t0 < 10 and 3 <= len(rows) < 100  # gave up: 100 retries take minutes


def test_backoff_is_jittered_and_capped():
    p = RetryPolicy(base_s=1.0, max_backoff_s=8.0)
    draws = [p.backoff(10) for _ in range(200)]
    assert 4.0 <= min(draws) and max(draws) <= 8.0 and len(set(draws)) > 100
    assert p.window(1.0) == p.min_window_s and p.window(10_000) == p.max_window_s


def test_doctests_of_every_notify_module():
    failed = attempted = 0
    for info in pkgutil.walk_packages(pipelines.notify.__path__, "pipelines.notify."):
        if info.name.endswith("__main__"):
            continue
        result = doctest.testmod(importlib.import_module(info.name))
        failed, attempted = failed + result.failed, attempted + result.attempted
    assert failed == 0 and attempted >= 40


def test_a_damaged_state_file_is_one_clear_error_and_left_for_the_operator(tmp_path):
    """A state.sqlite3 that is not a database crashed the worker with sqlite3's traceback."""
    from pipelines.notify.state_db import StateDB, StateError

    damaged = tmp_path / "state.sqlite3"
    damaged.write_bytes(b"\x00garbage" * 512)
    with pytest.raises(StateError, match="cannot be read .*move it aside"):
        StateDB(tmp_path)
    assert damaged.read_bytes() == b"\x00garbage" * 512  # not replaced: the silences and acks may be in it
    damaged.rename(tmp_path / "state.sqlite3.bad")
    StateDB(tmp_path).close()  # the lock was let go: the worker starts once the file is moved aside
