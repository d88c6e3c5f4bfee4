"""The worker's durable state: one SQLite file under ``$GPUWATCH_HOME/notify/``.

It holds the alerts not yet fully notified, the notification log, silences and
acks. Every change is committed with ``synchronous=FULL`` (fsync'd) before the
worker commits the Kafka offset that caused it, so a restart neither forgets a
pending alert nor resends a delivered one.

One worker owns a state directory at a time (an exclusive ``flock``): two
workers on the same state would each notify.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    fingerprint TEXT PRIMARY KEY, status TEXT NOT NULL, doc TEXT NOT NULL, event_ts REAL NOT NULL,
    done INTEGER NOT NULL DEFAULT 0, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS nflog (
    integration TEXT NOT NULL, group_key TEXT NOT NULL, firing TEXT NOT NULL, resolved TEXT NOT NULL,
    sent_at REAL NOT NULL, PRIMARY KEY (integration, group_key));
CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY, matchers TEXT NOT NULL, starts_at REAL NOT NULL, ends_at REAL NOT NULL,
    created_by TEXT NOT NULL, comment TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS acks (
    fingerprint TEXT PRIMARY KEY, starts_at REAL NOT NULL, owner TEXT NOT NULL, comment TEXT NOT NULL,
    acked_at REAL NOT NULL);
"""


class StateError(RuntimeError):
    """The state directory cannot be used; the text says why and what to do."""


class StateLockedError(StateError):
    """Another notify worker already owns this state directory."""


class StateDB:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.directory / "worker.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise StateLockedError(f"another gpuwatch notify worker is using {self.directory}; "
                                   "run one worker per state directory") from None
        self.path = self.directory / "state.sqlite3"
        try:
            self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as e:  # a damaged file: silences and acks live there, so say, don't replace
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            raise StateError(f"the notifier's state {self.path} cannot be read ({e}); move it aside to start "
                             "with none (its silences, acks and notification log are then gone)") from None

    def transaction(self) -> "_Tx":
        return _Tx(self.conn)

    def close(self) -> None:
        try:
            self.conn.close()
        finally:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            finally:
                os.close(self._lock_fd)


class _Tx:
    """``with db.transaction():`` groups statements into one durable commit."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")
