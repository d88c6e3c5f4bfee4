"""Helpers for the log-processing tests: batches of real-looking lines at chosen times."""

from __future__ import annotations

import time

import pytest

from schemas.logs import LogBatch


def batch(node: str, lines: list[str] | str, ts: float, *, level: str = "", job: str | None = None,
          spread_s: float = 0.0, n: int = 1) -> LogBatch:
    """A batch of ``lines`` (or ``n`` copies of one line) starting at ``ts``, spread over ``spread_s``."""
    if isinstance(lines, str):
        lines = [lines] * n
    labels = {"job": job} if job else {}
    step = spread_s / max(len(lines), 1)
    return LogBatch(node=node, records=[
        {"ts": ts + i * step, "message": m, "level": level, "source": "/var/log/train.log", "labels": labels}
        for i, m in enumerate(lines)])


@pytest.fixture
def t0() -> float:
    """A start time two hours ago, on a minute boundary, so tests can play two hours of logs."""
    return float(int(time.time() - 7200) // 60 * 60)
