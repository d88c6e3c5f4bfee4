"""What is wrong now: incidents from the alert history, with who owns them.

The history (``gpuwatch.alerts``) says what fired, where, with which evidence;
the notifier knows who acknowledged what. Both ``gpuwatch alerts`` and the
console show the two side by side. The history is read through the same
read-only path as ``gpuwatch query`` (:func:`pipelines.cli.query.fetch`), the
SQL lives here once, and the console's page runs the very same text through
``/query``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import orjson


def incidents_sql(include_resolved: bool = False, limit: int = 200) -> str:
    """One row per incident (fingerprint and start), its latest state first.

    >>> "HAVING state = 'firing'" in incidents_sql()
    True
    """
    having = "" if include_resolved else "HAVING state = 'firing' "
    return (
        "SELECT fingerprint, starts_at, argMax(status, event_ts) AS state, any(alertname) AS alertname, "
        "argMax(severity, event_ts) AS level, any(node) AS node_name, any(gpu) AS gpu_index, "
        "argMax(source, event_ts) AS decided_by, max(event_ts) AS last_event, "
        "argMax(ends_at, event_ts) AS ended_at, "
        "argMax(annotations['summary'], event_ts) AS summary, "
        "argMaxIf(evidence, event_ts, status = 'firing') AS firing_evidence, "
        "argMax(evidence_query, event_ts) AS query "
        "FROM gpuwatch.alerts GROUP BY fingerprint, starts_at "
        f"{having}ORDER BY state = 'firing' DESC, starts_at DESC LIMIT {int(limit)}")


@dataclass
class Incident:
    fingerprint: str
    status: str
    alertname: str
    severity: str
    node: str
    gpu: int
    source: str
    starts_at: str
    ends_at: str | None
    summary: str
    evidence: list[dict] = field(default_factory=list)
    evidence_query: str = ""
    owner: str = ""
    silenced: bool = False

    @property
    def age_s(self) -> float:
        return max(0.0, time.time() - parse_ts(self.starts_at))

    def evidence_text(self, limit: int = 3) -> str:
        """``gpu_temp_c=97.0 (baseline 62.1)``, the values that made the decision."""
        parts = []
        for e in self.evidence[:limit]:
            text = f"{e.get('metric')}={_num(e.get('value'))}"
            if e.get("baseline") is not None:
                text += f" (baseline {_num(e.get('baseline'))})"
            parts.append(text)
        return "; ".join(parts)

    def as_dict(self) -> dict:
        return {**asdict(self), "age_s": round(self.age_s, 1)}


def _num(v) -> str:
    return "?" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)


def parse_ts(text: str) -> float:
    """Epoch seconds of a stored time (ClickHouse DateTime64 in UTC, as ISO text)."""
    from datetime import datetime, timezone

    dt = datetime.fromisoformat(str(text).replace("Z", "+00:00").replace(" ", "T"))
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).timestamp()


def from_rows(columns: list[str], rows: list[list]) -> list[Incident]:
    out = []
    for r in rows:
        d = dict(zip(columns, r))
        try:
            evidence = orjson.loads(d["firing_evidence"]) if d.get("firing_evidence") else []
        except ValueError:
            evidence = []
        out.append(Incident(
            fingerprint=d["fingerprint"], status=d["state"], alertname=d["alertname"], severity=d["level"],
            node=d["node_name"], gpu=int(d["gpu_index"]), source=d["decided_by"], starts_at=str(d["starts_at"]),
            ends_at=str(d["ended_at"]) if d.get("ended_at") else None, summary=d.get("summary") or "",
            evidence=evidence if isinstance(evidence, list) else [], evidence_query=d.get("query") or ""))
    return out


def load(dsn: str, database: str = "gpuwatch", include_resolved: bool = False, notify_url: str | None = None,
         limit: int = 200) -> tuple[list[Incident], str | None]:
    """Incidents from the history, with owners from the notifier.

    Returns the incidents and, when the notifier could not be asked, a note
    saying so (owners are then taken from the stored ack history).
    """
    from pipelines.cli.query import fetch

    columns, rows = fetch(incidents_sql(include_resolved, limit), dsn, database)
    incidents = from_rows(columns, rows)
    note = None
    try:
        from pipelines.notify.api_client import ApiError, NotifyApi

        live = {a["fingerprint"]: a for a in NotifyApi(notify_url, timeout=3).alerts()}
        for inc in incidents:
            a = live.get(inc.fingerprint)
            if a is not None and inc.status == "firing":
                inc.owner = a.get("acked_by") or ""
                inc.silenced = bool(a.get("silenced_by"))
    except ApiError as e:
        note = f"owners from the ack history: {e}"
        _owners_from_history(incidents, dsn, database)
    return incidents, note


def _owners_from_history(incidents: list[Incident], dsn: str, database: str) -> None:
    from pipelines.cli.query import fetch
    from pipelines.store import StoreError

    if not incidents:
        return
    try:
        _, rows = fetch("SELECT fingerprint, argMax(owner, ts), argMax(action, ts) FROM gpuwatch.alert_acks "
                        "GROUP BY fingerprint, starts_at", dsn, database)
    except StoreError:
        return
    owners = {fp: owner for fp, owner, action in rows if action == "ack"}
    for inc in incidents:
        inc.owner = owners.get(inc.fingerprint, "")


def format_age(seconds: float) -> str:
    """
    >>> format_age(42), format_age(125), format_age(7300), format_age(200000)
    ('42s', '2m05s', '2h01m', '2d07h')
    """
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"
