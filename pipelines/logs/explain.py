"""Explain an alert from the logs: the rarest and the most-bursting templates around its onset.

When a metric alert fires on a node (or a job), the operator's next question
is "what did the logs say?". The answer is two short lists, from the node's
(or job's) lines between ``before_s`` before the onset and ``after_s`` after:

* the **rarest** templates: fewest lines fleet-wide, ever (a line this
  unusual near a failure is usually about the failure);
* the **most bursting** templates: lines per minute near the onset against
  lines per minute in the ``baseline_s`` before it.

Each becomes an :class:`~schemas.alerts.Evidence` with an example line, and
the alert carries the ClickHouse query that produced them, which an operator
can run as it is. The answer comes from ClickHouse rather than the
processor's memory, so it covers every worker's nodes and survives restarts;
the cost is one query per alert, and lines still in the sink's buffer (a
few seconds) are not in it yet.

>>> q = explanation_query("gpuwatch", node="n1", onset=0.0)
>>> "l.node = 'n1'" in q and "gpuwatch.log_templates_resolved" in q
True
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.logs.sql import ch_time, sql_str
from schemas.alerts import Evidence


@dataclass(frozen=True)
class TemplateNearOnset:
    template_id: int
    text: str
    near: int
    baseline: int
    fleet_total: int
    burst: float
    example: str


def explanation_query(database: str, *, node: str | None = None, job: str | None = None, onset: float,
                      before_s: float = 300.0, after_s: float = 60.0, baseline_s: float = 3600.0,
                      limit: int = 50) -> str:
    """SQL listing every template of the node/job near ``onset`` with its counts, burst score and rarity.

    Templates are counted by event: rows stored under a template's earlier ids (before it generalised)
    count under its current id (``logs_resolved.event_id``).
    """
    if not node and not job:
        raise ValueError("explain needs a node or a job")
    scope = f"l.node = {sql_str(node)}" if node else f"l.labels['job'] = {sql_str(job or '')}"
    near_start, near_end = onset - before_s, onset + after_s
    near_min, base_min = (before_s + after_s) / 60.0, baseline_s / 60.0
    return (
        f"SELECT l.event_id AS template_id, any(t.text) AS template,\n"
        f"  countIf(l.ts >= {ch_time(near_start)}) AS near,\n"
        f"  countIf(l.ts < {ch_time(near_start)}) AS baseline,\n"
        f"  any(t.count) AS fleet_total,\n"
        f"  round((near / {near_min:g} + 0.1) / (baseline / {base_min:g} + 0.1), 2) AS burst,\n"
        f"  anyIf(l.message, l.ts >= {ch_time(near_start)}) AS example\n"
        f"FROM {database}.logs_resolved AS l\n"
        f"LEFT JOIN {database}.log_templates_resolved AS t ON t.template_id = l.event_id\n"
        f"WHERE {scope} AND l.ts >= {ch_time(near_start - baseline_s)} AND l.ts <= {ch_time(near_end)}\n"
        f"GROUP BY l.event_id HAVING near > 0\n"
        f"ORDER BY burst DESC, fleet_total ASC LIMIT {int(limit)}"
    )


class LogExplainer:
    """Evidence for an alert from the log tables. ``store``: a :class:`pipelines.store.Store`."""

    def __init__(self, store, *, top: int = 3, before_s: float = 300.0, after_s: float = 60.0,
                 baseline_s: float = 3600.0, min_burst: float = 2.0) -> None:
        self.store = store
        self.top = top
        self.before_s, self.after_s, self.baseline_s = before_s, after_s, baseline_s
        self.min_burst = min_burst

    def explain(self, *, node: str | None = None, job: str | None = None,
                ts: float) -> tuple[list[Evidence], str]:
        """(evidence, query) for an alert whose onset is ``ts``; empty evidence if the logs are quiet."""
        query = explanation_query(self.store.database, node=node, job=job, onset=ts, before_s=self.before_s,
                                  after_s=self.after_s, baseline_s=self.baseline_s, limit=500)
        rows = [TemplateNearOnset(int(r[0]), r[1] or "", int(r[2]), int(r[3]), int(r[4] or 0), float(r[5]),
                                  r[6] or "") for r in self.store.query(query).rows]
        return self.evidence(rows), query

    def evidence(self, rows: list[TemplateNearOnset]) -> list[Evidence]:
        """Pick the rarest and the most-bursting templates (each template once)."""
        out, used = [], set()
        bursting = sorted((r for r in rows if r.burst >= self.min_burst), key=lambda r: (-r.burst, r.fleet_total))
        for r in bursting[: self.top]:
            used.add(r.template_id)
            out.append(Evidence(metric="log_template_burst", value=float(r.near), baseline=float(r.baseline),
                                score=r.burst, detail=_detail(r)))
        rare = sorted((r for r in rows if r.template_id not in used), key=lambda r: (r.fleet_total, -r.near))
        for r in rare[: self.top]:
            out.append(Evidence(metric="log_template_rare", value=float(r.near), baseline=float(r.fleet_total),
                                score=1.0 / max(r.fleet_total, 1), detail=_detail(r)))
        return out


def _detail(r: TemplateNearOnset) -> str:
    return (f"template {r.template_id}: {r.text} | {r.near} lines near onset, {r.fleet_total} ever "
            f"| e.g. {r.example}")[:1024]


def fleet_templates(store, limit: int = 100_000) -> list[tuple[int, str]]:
    """Every template the fleet has stored, most recently seen first: for
    :meth:`pipelines.logs.processor.LogProcessor.learn_fleet_templates`."""
    rows = store.query(f"SELECT template_id, text FROM {store.database}.log_templates_resolved "
                       f"ORDER BY last_seen DESC LIMIT {int(limit)}").rows
    return [(int(tid), text) for tid, text in rows]
