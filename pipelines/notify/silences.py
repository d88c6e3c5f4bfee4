"""Silences: matchers that mute alerts for a while, with who set them and why.

A silence is *pending* before it starts, *active* while ``starts_at <= now <
ends_at`` and *expired* after; expiring one sets its end to now. Silences are
persisted with the rest of the worker's state and every change is reported to
the history topic.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from dataclasses import dataclass

import orjson

from pipelines.notify.matchers import Matcher, MatcherError, matches_all
from pipelines.notify.state_db import StateDB

log = logging.getLogger("gpuwatch.notify.silences")


class SilenceError(ValueError):
    """A silence request that cannot be honoured; the text says why."""


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    created_at: float
    updated_at: float

    def state(self, now: float | None = None) -> str:
        now = time.time() if now is None else now
        if now < self.starts_at:
            return "pending"
        return "active" if now < self.ends_at else "expired"

    def mutes(self, labels: dict[str, str], now: float) -> bool:
        return self.starts_at <= now < self.ends_at and matches_all(self.matchers, labels)

    def as_dict(self, now: float | None = None) -> dict:
        return {"id": self.id, "matchers": [str(m) for m in self.matchers], "starts_at": self.starts_at,
                "ends_at": self.ends_at, "created_by": self.created_by, "comment": self.comment,
                "created_at": self.created_at, "updated_at": self.updated_at, "state": self.state(now)}

    def history_row(self, action: str) -> dict:
        return {"ts": self.updated_at, "silence_id": self.id, "action": action,
                "matchers": ",".join(str(m) for m in self.matchers), "starts_at": self.starts_at,
                "ends_at": self.ends_at, "created_by": self.created_by, "comment": self.comment}


#: How far ahead a silence may end. Longer ones are mistakes (99999999999h once ended in the year
#: 11409972, beyond what the history table's DateTime64 holds, and the table could not be read again).
MAX_SILENCE_S = 366 * 86400


def _day(ts: float) -> str:
    """The UTC day of an epoch time, for messages; years past 9999 read as seconds.

    >>> _day(0.0), _day(1e18)
    ('1970-01-01', '1000000000000000000 s after 1970')
    """
    try:
        return time.strftime("%Y-%m-%d", time.gmtime(ts))
    except (OverflowError, OSError, ValueError):
        return f"{ts:.0f} s after 1970"


class Silences:
    def __init__(self, db: StateDB) -> None:
        self.db = db
        self._by_id: dict[str, Silence] = {}
        for row in db.conn.execute("SELECT id, matchers, starts_at, ends_at, created_by, comment, created_at, "
                                   "updated_at FROM silences"):
            try:
                ms = tuple(Matcher.parse(m) for m in orjson.loads(row[1]))
            except (MatcherError, ValueError, TypeError) as e:  # one unreadable row must not stop the notifier
                log.error("silence %s is unreadable and is skipped (%s); matchers %s", row[0], e, row[1][:200])
                continue
            self._by_id[row[0]] = Silence(row[0], ms, *row[2:])

    def create(self, matchers: list[Matcher], ends_at: float, created_by: str, comment: str,
               starts_at: float | None = None, now: float | None = None) -> Silence:
        now = time.time() if now is None else now
        starts_at = now if starts_at is None else starts_at
        if not matchers:
            raise SilenceError("a silence needs at least one matcher, e.g. alertname=\"GpuHot\"")
        if all(m.matches({}) for m in matchers):
            raise SilenceError("these matchers would match every alert (each matches an empty label set); "
                               "add one that names what to silence")
        if not created_by.strip():
            raise SilenceError("a silence needs an author (created_by)")
        if not comment.strip():
            raise SilenceError("a silence needs a comment saying why")
        if not (math.isfinite(ends_at) and math.isfinite(starts_at)):
            raise SilenceError("a silence must start and end at a finite time (epoch seconds)")
        if ends_at <= starts_at or ends_at <= now:
            raise SilenceError("a silence must end in the future and after it starts")
        if starts_at < now - MAX_SILENCE_S:
            raise SilenceError(f"a silence starts at most 366 days ago, not {_day(starts_at)}")
        if ends_at > now + MAX_SILENCE_S:
            raise SilenceError(f"a silence ends at most 366 days from now, not {_day(ends_at)}; "
                               "renew it when it nears its end")
        s = Silence(uuid.uuid4().hex, tuple(matchers), starts_at, ends_at, created_by.strip(), comment.strip(),
                    now, now)
        self._save(s)
        return s

    def expire(self, silence_id: str, now: float | None = None) -> Silence:
        now = time.time() if now is None else now
        s = self.get(silence_id)
        if s.state(now) == "expired":
            raise SilenceError(f"silence {silence_id} has already expired")
        s = Silence(s.id, s.matchers, min(s.starts_at, now), now, s.created_by, s.comment, s.created_at, now)
        self._save(s)
        return s

    def get(self, silence_id: str) -> Silence:
        s = self._by_id.get(silence_id)
        if s is not None:
            return s
        if len(silence_id) < 6:
            raise SilenceError(f"{silence_id!r} is too short: give at least 6 characters of a silence id "
                               "(see `gpuwatch silence list`)")
        matches = sorted(k for k in self._by_id if k.startswith(silence_id))
        if len(matches) == 1:
            return self._by_id[matches[0]]
        if matches:
            raise SilenceError(f"{silence_id} matches {len(matches)} silences ({', '.join(m[:12] for m in matches[:5])}); "
                               "give a longer prefix")
        raise SilenceError(f"no silence with id {silence_id!r}")

    def list(self, include_expired: bool = True, now: float | None = None) -> list[Silence]:
        now = time.time() if now is None else now
        out = [s for s in self._by_id.values() if include_expired or s.state(now) != "expired"]
        return sorted(out, key=lambda s: s.created_at)

    def muting(self, labels: dict[str, str], now: float | None = None) -> list[str]:
        """Ids of the active silences that mute an alert with these labels."""
        now = time.time() if now is None else now
        return [s.id for s in self._by_id.values() if s.mutes(labels, now)]

    def _save(self, s: Silence) -> None:
        with self.db.transaction() as c:
            c.execute("INSERT OR REPLACE INTO silences (id, matchers, starts_at, ends_at, created_by, comment, "
                      "created_at, updated_at) VALUES (?,?,?,?,?,?,?,?)",
                      (s.id, orjson.dumps([str(m) for m in s.matchers]).decode(), s.starts_at, s.ends_at,
                       s.created_by, s.comment, s.created_at, s.updated_at))
        self._by_id[s.id] = s
