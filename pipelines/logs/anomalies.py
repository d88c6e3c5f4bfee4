"""Anomalies in the log stream, reported as :class:`Condition`s that hold now.

Three judgements, each against the thing's own history:

* **new template** (``log_new_template``): a template no miner of this fleet
  has produced before. A fresh miner finds *every* template new, so nothing
  is reported until the miner has mined ``warmup_lines`` lines over
  ``warmup_s`` seconds of event time (both survive restarts), and by default
  only for error-ish lines: a new "INFO checkpoint saved" line is not news.
* **burst** (``log_burst``): one template on one node, lines per window
  against its own moving average (EWMA of past windows).
* **error rate** (``log_error_rate``): error lines per window for a node, and
  for a job (``job`` label), against their moving averages.

Rates are counted in event-time windows, so a replay makes the same
decisions. Bursts and error rates are only judged once a node (or job) has
``history_windows`` windows of history, so a node that just joined does not
alert on its first busy minute. Rate state lives in memory: after a restart
each node needs that history again (the worker is quiet, not noisy, while it
relearns), and nodes and jobs idle for ``forget_after_s`` are forgotten, so
job churn does not grow memory.

The conditions go through the same :class:`pipelines.decide.IncidentBook` as
metric alerts (channel ``logs``): the processor returns, per node and per job
it saw, the full list of log conditions holding now (see ``Observation``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pipelines.decide import Condition
from pipelines.logs.sql import ch_time, sql_str
from schemas.alerts import Evidence

CHANNEL = "logs"
ERROR_LEVELS = frozenset({"error", "err", "critical", "crit", "fatal", "alert", "emerg", "emergency", "panic",
                          "severe", "e", "f"})
#: Words that make a line without a level count as an error line.
ERROR_WORDS = re.compile(r"(?i)\b(?:error|errors|fail|failed|failure|fatal|exception|panic|traceback|"
                         r"abort|aborted|timeout|timed out|segfault|killed|unrecoverable|uncorrectable)\b")


def is_error(level: str, template_text: str) -> bool:
    """An error line: an error level, or no level and an error word in the template.

    >>> is_error("ERROR", "step <NUM>"), is_error("", "NCCL timed out"), is_error("info", "no errors")
    (True, True, False)
    """
    if level:
        return level.lower() in ERROR_LEVELS
    return ERROR_WORDS.search(template_text) is not None


@dataclass(frozen=True)
class LogAnomalySettings:
    """Thresholds; every default is what an operator of a mid-sized fleet would start from."""

    window_s: float = 60.0
    #: New-template alerts start after the miner has mined this long (event time) ...
    warmup_s: float = 900.0
    #: ... and this many lines.
    warmup_lines: int = 10_000
    #: Only error-ish new templates alert (level or error words); False: every new template.
    new_template_errors_only: bool = True
    #: At most this many new-template alerts per node per batch; the rest are counted.
    new_template_max_per_batch: int = 5
    new_template_hold_s: float = 900.0
    burst_factor: float = 10.0
    burst_min_lines: int = 50
    error_factor: float = 5.0
    error_min_lines: int = 20
    #: Windows of history a node or job needs before bursts and error rates are judged.
    history_windows: int = 10
    ewma_alpha: float = 0.1
    #: How long a burst or error-rate alert keeps firing after it was last seen to hold.
    hold_s: float = 180.0
    max_templates_per_node: int = 5_000
    #: Nodes and jobs with no lines for this long are forgotten (jobs come and go).
    forget_after_s: float = 86_400.0
    severity: str = "warning"


class WindowedRate:
    """Lines in the open event-time window, the last closed one, and an EWMA of closed windows."""

    __slots__ = ("window", "count", "prev", "mean", "first")

    def __init__(self, window: int) -> None:
        self.window = self.first = window
        self.count = self.prev = 0
        self.mean = 0.0

    def absorb(self, other: "WindowedRate", alpha: float) -> None:
        """Take in another rate's lines (one event counted under two template ids)."""
        window = max(self.window, other.window)
        self.add(window, 0, alpha)
        other.add(window, 0, alpha)
        self.count += other.count
        self.prev += other.prev
        self.mean += other.mean
        self.first = min(self.first, other.first)

    def add(self, window: int, n: int, alpha: float) -> None:
        if window > self.window:
            self.mean += alpha * (self.count - self.mean)
            gap = window - self.window - 1
            self.prev = self.count if gap == 0 else 0
            if gap > 0:
                self.mean *= (1.0 - alpha) ** min(gap, 10_000)
            self.window, self.count = window, 0
        self.count += n  # late lines count in the open window

    def recent(self) -> int:
        """Lines in the open window or the last closed one, whichever is more: a burst that
        straddles a window boundary keeps holding."""
        return max(self.count, self.prev)


@dataclass
class NewTemplate:
    template_id: int
    text: str
    example: str
    ts: float
    error: bool


@dataclass
class BatchTally:
    """What one log batch of one node contributed, counted per event-time window."""

    node: str
    ts: float
    template_lines: dict[tuple[int, int], int] = field(default_factory=dict)
    error_lines: dict[int, int] = field(default_factory=dict)
    job_error_lines: dict[tuple[str, int], int] = field(default_factory=dict)
    jobs: set[str] = field(default_factory=set)
    new_templates: list[NewTemplate] = field(default_factory=list)
    texts: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Observation:
    """Every log condition holding now for one key: a node id, or ``job:<name>``.

    Pass it on as ``book.observe(obs.key, obs.ts, obs.conditions, channel="logs")``;
    an empty list is meaningful (it lets earlier log incidents of the key resolve).
    """

    key: str
    ts: float
    conditions: list[Condition]


@dataclass
class _Scope:
    errors: WindowedRate
    templates: dict[int, WindowedRate] = field(default_factory=dict)
    hot: set[int] = field(default_factory=set)


class LogAnomalyDetector:
    """Per-node and per-job rate state; :meth:`observe` turns a batch tally into observations."""

    def __init__(self, settings: LogAnomalySettings | None = None, database: str = "gpuwatch") -> None:
        self.settings = settings or LogAnomalySettings()
        self.database = database
        self.nodes: dict[str, _Scope] = {}
        self.jobs: dict[str, _Scope] = {}
        self.new_templates_suppressed = 0
        self._batches = 0

    def warm(self, born_ts: float | None, lines_mined: int, ts: float) -> bool:
        s = self.settings
        return born_ts is not None and ts - born_ts >= s.warmup_s and lines_mined >= s.warmup_lines

    def observe(self, tally: BatchTally, *, warm: bool) -> list[Observation]:
        s = self.settings
        now_w = int(tally.ts // s.window_s)
        self._batches += 1
        if self._batches % 10_000 == 0:
            self._forget_idle(now_w)
        scope = self.nodes.get(tally.node)
        if scope is None:
            first = min([now_w, *(w for w, _ in tally.template_lines)])
            scope = self.nodes[tally.node] = _Scope(WindowedRate(first))
        for (w, tid), n in tally.template_lines.items():
            rate = scope.templates.get(tid)
            if rate is None:
                rate = scope.templates[tid] = WindowedRate(w)
            rate.add(w, n, s.ewma_alpha)
        for w, n in sorted(tally.error_lines.items()):
            scope.errors.add(w, n, s.ewma_alpha)
        scope.errors.add(now_w, 0, s.ewma_alpha)
        if len(scope.templates) > s.max_templates_per_node:
            self._forget_oldest(scope)

        conditions = self._new_template_conditions(tally, warm)
        if now_w - scope.errors.first >= s.history_windows:
            touched = {tid for _, tid in tally.template_lines} | scope.hot
            for tid in touched:
                cond = self._burst(tally, scope, tid, now_w)
                if cond is not None:
                    scope.hot.add(tid)
                    conditions.append(cond)
                else:
                    scope.hot.discard(tid)
            cond = self._error_rate(tally.node, None, scope.errors, tally.ts, now_w)
            if cond is not None:
                conditions.append(cond)
        observations = [Observation(tally.node, tally.ts, conditions)]

        job_windows: dict[str, list[tuple[int, int]]] = {}
        for (job, w), n in tally.job_error_lines.items():
            job_windows.setdefault(job, []).append((w, n))
        for job in tally.jobs:
            js = self.jobs.get(job)
            if js is None:
                js = self.jobs[job] = _Scope(WindowedRate(now_w))
            for w, n in sorted(job_windows.get(job, [])):
                js.errors.add(w, n, s.ewma_alpha)
            js.errors.add(now_w, 0, s.ewma_alpha)
            conds = []
            if now_w - js.errors.first >= s.history_windows:
                cond = self._error_rate(tally.node, job, js.errors, tally.ts, now_w)
                if cond is not None:
                    conds.append(cond)
            observations.append(Observation(f"job:{job}", tally.ts, conds))
        return observations

    def succeed(self, successors: dict[int, int]) -> None:
        """Templates generalised (old id -> its successor): each node's rate of an old id joins the
        successor's, so the event keeps its baseline (a fresh rate would read its usual traffic as a burst)."""
        alpha = self.settings.ewma_alpha
        for scope in self.nodes.values():
            rates = scope.templates
            for old, new in successors.items():
                rate = rates.pop(old, None)
                if rate is None:
                    continue
                if new in rates:
                    rates[new].absorb(rate, alpha)
                else:
                    rates[new] = rate
                if old in scope.hot:
                    scope.hot.discard(old)
                    scope.hot.add(new)

    # -- the three judgements ------------------------------------------
    def _new_template_conditions(self, tally: BatchTally, warm: bool) -> list[Condition]:
        s = self.settings
        if not warm:
            return []
        out = []
        for nt in tally.new_templates:
            if s.new_template_errors_only and not nt.error:
                continue
            if len(out) >= s.new_template_max_per_batch:
                self.new_templates_suppressed += 1
                continue
            out.append(Condition(
                alertname="LogNewTemplate", labels={"node": tally.node, "template_id": str(nt.template_id)},
                ts=nt.ts, severity=s.severity, keep_firing_for_s=s.new_template_hold_s,
                annotations={"summary": f"A log line never seen before on this fleet appeared on {tally.node}",
                             "template": nt.text[:1024], "example": nt.example[:1024]},
                evidence=[Evidence(metric="log_new_template", value=1.0, baseline=0.0,
                                   detail=f"template {nt.template_id}: {nt.text}"[:1024])],
                evidence_query=self._lines_query(tally.node, nt.template_id, nt.ts - 300),
                source="log_new_template", node=tally.node, channel=CHANNEL,
            ))
        return out

    def _burst(self, tally: BatchTally, scope: _Scope, tid: int, now_w: int) -> Condition | None:
        s = self.settings
        rate = scope.templates.get(tid)
        if rate is None or now_w - rate.window > 1:
            return None
        lines = rate.recent()
        baseline = max(rate.mean, 1.0)
        if lines < s.burst_min_lines or lines < s.burst_factor * baseline:
            return None
        text = tally.texts.get(tid, "")
        return Condition(
            alertname="LogTemplateBurst", labels={"node": tally.node, "template_id": str(tid)},
            ts=tally.ts, severity=s.severity, keep_firing_for_s=s.hold_s,
            annotations={"summary": f"{lines} lines of one log template on {tally.node} in a "
                                    f"{s.window_s:.0f}s window, against {rate.mean:.1f} usually",
                         "template": text[:1024]},
            evidence=[Evidence(metric="log_template_lines_per_window", value=float(lines), baseline=rate.mean,
                               score=lines / baseline, detail=f"template {tid}: {text}"[:1024])],
            evidence_query=self._lines_query(tally.node, tid, tally.ts - 2 * s.window_s),
            source="log_burst", node=tally.node, channel=CHANNEL,
        )

    def _error_rate(self, node: str, job: str | None, rate: WindowedRate, ts: float,
                    now_w: int) -> Condition | None:
        s = self.settings
        lines = rate.recent()
        baseline = max(rate.mean, 1.0)
        if lines < s.error_min_lines or lines < s.error_factor * baseline:
            return None
        who = f"job {job}" if job else node
        labels = {"job": job} if job else {"node": node}
        return Condition(
            alertname="LogErrorRateHigh", labels=labels, ts=ts, severity=s.severity, keep_firing_for_s=s.hold_s,
            annotations={"summary": f"{lines} error log lines from {who} in a {s.window_s:.0f}s window, "
                                    f"against {rate.mean:.1f} usually"},
            evidence=[Evidence(metric="log_error_lines_per_window", value=float(lines), baseline=rate.mean,
                               score=lines / baseline, detail=f"error lines of {who}"[:1024])],
            evidence_query=self._errors_query(None if job else node, job, ts - 2 * s.window_s),
            source="log_error_rate", node=f"job:{job}" if job else node, channel=CHANNEL,
        )

    # -- helpers --------------------------------------------------------
    def _lines_query(self, node: str, tid: int, since: float) -> str:
        """The event's lines, whatever id they were stored under: rows resolve through the lineage
        (``logs_resolved.event_id``), and so does ``tid`` itself should the template generalise later."""
        db = self.database
        return (f"SELECT ts, source, level, message FROM {db}.logs_resolved "
                f"WHERE node = {sql_str(node)} AND event_id IN (SELECT {tid} UNION ALL SELECT successor "
                f"FROM {db}.log_template_successor WHERE template_id = {tid}) AND ts >= {ch_time(since)} "
                f"ORDER BY ts LIMIT 200")

    def _errors_query(self, node: str | None, job: str | None, since: float) -> str:
        where = f"node = {sql_str(node)}" if node else f"labels['job'] = {sql_str(job or '')}"
        levels = ", ".join(sql_str(x) for x in sorted(ERROR_LEVELS))
        return (f"SELECT event_id AS template_id, count() AS lines, any(message) AS example "
                f"FROM {self.database}.logs_resolved "
                f"WHERE {where} AND ts >= {ch_time(since)} AND lower(level) IN ({levels}) "
                f"GROUP BY template_id ORDER BY lines DESC LIMIT 50")

    def _forget_idle(self, now_w: int) -> None:
        oldest = now_w - int(self.settings.forget_after_s // self.settings.window_s)
        for scopes in (self.nodes, self.jobs):
            for key in [k for k, sc in scopes.items() if sc.errors.window < oldest]:
                del scopes[key]

    def _forget_oldest(self, scope: _Scope) -> None:
        keep = sorted(scope.templates.items(), key=lambda kv: kv[1].window, reverse=True)
        scope.templates = dict(keep[: int(self.settings.max_templates_per_node * 0.9)])
        scope.hot &= scope.templates.keys()
