"""Per-node token buckets, so one node's log flood cannot starve the others.

Mining and storing a line costs the same whichever node sent it; a node stuck
in an error loop can send a hundred times its usual volume and take the
whole worker with it. Each node gets ``lines_per_s`` sustained and
``burst_lines`` at once; lines over that are not mined or stored, but they
are counted (per node) and still checked for critical patterns, which costs
about a microsecond a line.

Buckets refill in event time (the batch's timestamps), so a replay admits
exactly the same lines as the first run did.

>>> lim = NodeRateLimiter(lines_per_s=10, burst_lines=100)
>>> lim.admit("n1", 1000.0, 150), lim.admit("n1", 1001.0, 50), lim.admit("n2", 1001.0, 50)
(100, 10, 50)
>>> lim.dropped["n1"]
90
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class _Bucket:
    tokens: float
    ts: float


@dataclass
class NodeRateLimiter:
    lines_per_s: float = 5_000.0
    burst_lines: float = 100_000.0
    buckets: dict[str, _Bucket] = field(default_factory=dict)
    #: Lines refused, per node, since start.
    dropped: Counter = field(default_factory=Counter)

    def admit(self, node: str, ts: float, lines: int) -> int:
        """How many of ``lines`` (arriving at event time ``ts``) may be processed."""
        b = self.buckets.get(node)
        if b is None:
            b = self.buckets[node] = _Bucket(self.burst_lines, ts)
        elif ts > b.ts:
            b.tokens = min(self.burst_lines, b.tokens + (ts - b.ts) * self.lines_per_s)
            b.ts = ts
        allowed = min(lines, int(b.tokens))
        b.tokens -= allowed
        if allowed < lines:
            self.dropped[node] += lines - allowed
        return allowed
