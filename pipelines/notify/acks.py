"""Acknowledgements: someone owns this incident.

An ack names its owner and belongs to one incident (fingerprint and start
time): an acknowledged alert stops repeating but still notifies when it
resolves, and a later re-fire of the same alert is a new, unacknowledged
incident.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from pipelines.notify.alert import Alert
from pipelines.notify.state_db import StateDB


class AckError(ValueError):
    """An ack or unack that cannot be done; the text says why."""


@dataclass(frozen=True)
class Ack:
    fingerprint: str
    starts_at: float
    owner: str
    comment: str
    acked_at: float
    #: whose ack of the same incident this one replaced (another owner), so a takeover is said, not silent;
    #: only in the answer to the ack (not stored: the history's ack rows already show who held it before)
    taken_from: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


class Acks:
    def __init__(self, db: StateDB) -> None:
        self.db = db
        self._by_fp: dict[str, Ack] = {
            r[0]: Ack(*r) for r in db.conn.execute(
                "SELECT fingerprint, starts_at, owner, comment, acked_at FROM acks")}

    def ack(self, alert: Alert | None, fingerprint: str, owner: str, comment: str = "",
            now: float | None = None) -> Ack:
        if not owner.strip():
            raise AckError("an ack needs an owner (who is handling it)")
        if alert is None or not alert.firing:
            raise AckError(f"no firing alert with fingerprint {fingerprint}; only a firing alert can be acked")
        prev = self.for_alert(alert)
        taken_from = prev.owner if prev is not None and prev.owner != owner.strip() else ""
        a = Ack(fingerprint, alert.starts_at, owner.strip(), comment.strip(), time.time() if now is None else now,
                taken_from)
        with self.db.transaction() as c:
            c.execute("INSERT OR REPLACE INTO acks (fingerprint, starts_at, owner, comment, acked_at) "
                      "VALUES (?,?,?,?,?)", (a.fingerprint, a.starts_at, a.owner, a.comment, a.acked_at))
        self._by_fp[fingerprint] = a
        return a

    def unack(self, fingerprint: str, owner: str = "") -> Ack:
        """Withdraw the ack; with ``owner`` given, only if it is that owner's (nobody's ack vanishes silently)."""
        a = self._by_fp.get(fingerprint)
        if a is None:
            raise AckError(f"alert {fingerprint} is not acknowledged")
        if owner.strip() and owner.strip() != a.owner:
            raise AckError(f"alert {fingerprint} is acknowledged by {a.owner}, not {owner.strip()}; "
                           f"ask {a.owner}, or unack without --owner to take it away")
        del self._by_fp[fingerprint]
        with self.db.transaction() as c:
            c.execute("DELETE FROM acks WHERE fingerprint=?", (fingerprint,))
        return a

    def for_alert(self, alert: Alert) -> Ack | None:
        """The ack of this alert's current incident, if any."""
        a = self._by_fp.get(alert.fingerprint)
        return a if a is not None and abs(a.starts_at - alert.starts_at) < 1e-3 else None

    def list(self) -> list[Ack]:
        return sorted(self._by_fp.values(), key=lambda a: a.acked_at)

    def forget(self, fingerprints: list[str]) -> None:
        """Drop acks of incidents that are over (their alert is done)."""
        gone = [fp for fp in fingerprints if fp in self._by_fp]
        if not gone:
            return
        with self.db.transaction() as c:
            c.executemany("DELETE FROM acks WHERE fingerprint=?", [(fp,) for fp in gone])
        for fp in gone:
            del self._by_fp[fp]
