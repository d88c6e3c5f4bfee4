"""Alerts the worker knows about, persisted before their Kafka offsets are committed.

An alert stays here until every aggregation group that holds it has sent its
resolution (or it was never worth sending); then it is marked done and kept a
while as a tombstone, so a replayed old event is recognised as stale.
"""

from __future__ import annotations

import time

import orjson

from pipelines.notify.alert import Alert
from pipelines.notify.state_db import StateDB

#: How long a finished alert is remembered to refuse stale replays.
TOMBSTONE_S = 7 * 86400


class AlertStore:
    def __init__(self, db: StateDB) -> None:
        self.db = db
        #: Alerts not yet done, by fingerprint: what the dispatcher works on.
        self.active: dict[str, Alert] = {}
        self._event_ts: dict[str, float] = {}
        for fp, doc, event_ts, done in db.conn.execute("SELECT fingerprint, doc, event_ts, done FROM alerts"):
            self._event_ts[fp] = event_ts
            if not done:
                self.active[fp] = Alert.from_row(orjson.loads(doc))

    def apply(self, alerts: list[Alert]) -> list[Alert]:
        """Store a batch in one durable commit; returns those that changed anything, in order.

        An event older than the one stored for its fingerprint is stale (a
        replay or a late duplicate) and is ignored. Every newer event is
        returned, not only the newest of its fingerprint: a batch may hold one
        incident's firing, its resolution and the next incident (a worker
        catching up), and each incident is to be paged.
        """
        changed: list[Alert] = []
        latest: dict[str, Alert] = {}
        for a in alerts:
            prev = latest.get(a.fingerprint)
            prev_ts = prev.event_ts if prev is not None else self._event_ts.get(a.fingerprint)
            if prev_ts is not None and a.event_ts <= prev_ts:
                continue
            latest[a.fingerprint] = a
            changed.append(a)
        if not latest:
            return changed
        now = time.time()
        with self.db.transaction() as c:
            c.executemany(
                "INSERT INTO alerts (fingerprint, status, doc, event_ts, done, updated_at) VALUES (?,?,?,?,0,?) "
                "ON CONFLICT(fingerprint) DO UPDATE SET status=excluded.status, doc=excluded.doc, "
                "event_ts=excluded.event_ts, done=0, updated_at=excluded.updated_at",
                [(a.fingerprint, a.status, orjson.dumps(a.to_row()).decode(), a.event_ts, now)
                 for a in latest.values()])
        for a in latest.values():
            self._event_ts[a.fingerprint] = a.event_ts
            self.active[a.fingerprint] = a
        return changed

    def mark_done(self, fingerprints: list[str]) -> None:
        """These resolved alerts need nothing more: keep only their tombstones."""
        if not fingerprints:
            return
        with self.db.transaction() as c:
            c.executemany("UPDATE alerts SET done=1, updated_at=? WHERE fingerprint=? AND status='resolved'",
                          [(time.time(), fp) for fp in fingerprints])
        for fp in fingerprints:
            a = self.active.get(fp)
            if a is not None and not a.firing:
                del self.active[fp]

    def gc(self, now: float | None = None) -> int:
        now = now or time.time()
        with self.db.transaction() as c:
            cur = c.execute("DELETE FROM alerts WHERE done=1 AND updated_at < ?", (now - TOMBSTONE_S,))
        return cur.rowcount
