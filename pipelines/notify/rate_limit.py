"""A token bucket per receiver integration, so an alert storm cannot flood a receiver.

Waiting for a token is not a failure: the notification goes out a little later.

>>> import asyncio, time
>>> bucket = TokenBucket(rate=10, burst=2)
>>> async def three():
...     t0 = time.monotonic()
...     for _ in range(3):
...         await bucket.acquire()
...     return time.monotonic() - t0
>>> 0.07 < asyncio.run(three()) < 0.5   # two from the burst, the third waits ~0.1 s
True
"""

from __future__ import annotations

import asyncio
import time


class TokenBucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate = float(rate)
        self.burst = float(burst)
        self._tokens = float(burst)
        self._last = time.monotonic()
        self._lock: asyncio.Lock | None = None

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now

    async def acquire(self) -> float:
        """Take one token, waiting if needed; returns the seconds waited."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        waited = 0.0
        async with self._lock:
            self._refill()
            if self._tokens < 1:
                delay = (1 - self._tokens) / self.rate
                await asyncio.sleep(delay)
                waited = delay
                self._refill()
            self._tokens -= 1
        return waited
