"""The notification log: what each receiver integration was last told about each group.

Alertmanager's nflog. The dedup stage reads it to decide whether a group needs
a notification at all; an entry is written only after a delivery succeeded.
Alerts are identified by incident (fingerprint and start time), so a re-fire
after a resolution is news even though its fingerprint is the same.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import orjson

from pipelines.notify.state_db import StateDB

#: Entries for groups that have been quiet this long are dropped.
RETENTION_S = 5 * 86400


@dataclass(frozen=True)
class LogEntry:
    firing: frozenset[str]
    resolved: frozenset[str]
    sent_at: float


class NotificationLog:
    def __init__(self, db: StateDB) -> None:
        self.db = db
        self._cache: dict[tuple[str, str], LogEntry] = {}
        self._pending: dict[tuple[str, str], LogEntry] = {}
        self._flush_scheduled = False
        for integ, gk, firing, resolved, sent_at in db.conn.execute(
                "SELECT integration, group_key, firing, resolved, sent_at FROM nflog"):
            self._cache[(integ, gk)] = LogEntry(frozenset(orjson.loads(firing)),
                                                frozenset(orjson.loads(resolved)), sent_at)

    def get(self, integration: str, group_key: str) -> LogEntry | None:
        return self._cache.get((integration, group_key))

    def record(self, integration: str, group_key: str, firing: set[str], resolved: set[str],
               sent_at: float | None = None) -> LogEntry:
        """Log a delivery. Entries recorded in one event-loop turn share one commit (group commit),
        which is written before the loop runs anything else; outside a loop it commits at once."""
        entry = LogEntry(frozenset(firing), frozenset(resolved), sent_at or time.time())
        self._cache[(integration, group_key)] = entry
        self._pending[(integration, group_key)] = entry
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return entry
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self.flush)
        return entry

    def flush(self) -> None:
        self._flush_scheduled = False
        if not self._pending:
            return
        rows = [(integ, gk, orjson.dumps(sorted(e.firing)).decode(), orjson.dumps(sorted(e.resolved)).decode(),
                 e.sent_at) for (integ, gk), e in self._pending.items()]
        self._pending.clear()
        with self.db.transaction() as c:
            c.executemany("INSERT OR REPLACE INTO nflog (integration, group_key, firing, resolved, sent_at) "
                          "VALUES (?,?,?,?,?)", rows)

    def gc(self, now: float | None = None) -> int:
        cutoff = (now or time.time()) - RETENTION_S
        stale = [k for k, e in self._cache.items() if e.sent_at < cutoff]
        with self.db.transaction() as c:
            c.executemany("DELETE FROM nflog WHERE integration=? AND group_key=?", stale)
        for k in stale:
            del self._cache[k]
        return len(stale)


def needs_update(entry: LogEntry | None, firing: set[str], resolved: set[str], send_resolved: bool,
                 repeat_interval: float, now: float, all_firing_acked: bool = False) -> bool:
    """Alertmanager's dedup decision, plus acks: an acknowledged group does not repeat.

    >>> needs_update(None, {"a"}, set(), True, 3600, 0)
    True
    >>> e = LogEntry(frozenset({"a"}), frozenset(), sent_at=100.0)
    >>> needs_update(e, {"a"}, set(), True, 3600, 200)        # nothing new, not yet time to repeat
    False
    >>> needs_update(e, {"a"}, set(), True, 3600, 4000)       # repeat_interval passed
    True
    >>> needs_update(e, {"a"}, set(), True, 3600, 4000, all_firing_acked=True)
    False
    >>> needs_update(e, set(), {"a"}, True, 3600, 200)        # resolved: always said
    True
    """
    if entry is None:
        return bool(firing)
    if not firing <= entry.firing:
        return True
    if not firing:
        # Everything resolved: tell them only if they had been told something was firing.
        return bool(entry.firing)
    if send_resolved and not resolved <= entry.resolved:
        return True
    if all_firing_acked:
        return False
    return entry.sent_at <= now - repeat_interval
