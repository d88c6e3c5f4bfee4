"""The log path for one batch: rate limit -> header -> mine -> critical patterns -> anomalies -> rows.

:class:`LogProcessor` is plain Python (no Faust, no ClickHouse connection), so
the Faust logs processor, the offline CLI, the benchmark and the tests all run
the same code. The caller owns I/O: it writes ``log_rows`` and
``template_rows`` to ClickHouse, records ``events`` as node events, and passes
each ``Observation`` to its :class:`~pipelines.decide.IncidentBook`.

>>> import time
>>> from schemas.logs import LogBatch
>>> p = LogProcessor()
>>> now = time.time()
>>> out = p.process(LogBatch(node="n1", records=[
...     {"ts": now, "message": "step 1 loss 2.5"},
...     {"ts": now, "message": "RuntimeError: CUDA error: an illegal memory access was encountered"}]), 0, 42)
>>> len(out.log_rows), out.log_rows[0][5] == p.miner.mine("step 2 loss 2.4").template_id
(2, True)
>>> out.events[0].title, p.counters["lines_received"]
('CUDA illegal memory access', 2)
"""

from __future__ import annotations

import logging
import time
from operator import attrgetter
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from pipelines.decide import Condition
from pipelines.logs.anomalies import (BatchTally, LogAnomalyDetector, LogAnomalySettings, NewTemplate,
                                      Observation, is_error)
from pipelines.logs.headers import HeaderFormatError, HeaderParser
from pipelines.logs.miner import MinedLine, TemplateMiner, template_id
from pipelines.logs.patterns import PatternBook
from pipelines.logs.ratelimit import NodeRateLimiter
from pipelines.logs.salvage import DecodedBatch
from pipelines.logs.sources import FORMAT_LABEL, LogSources
from schemas.events import NodeEvent
from schemas.logs import MAX_LINE_CHARS, TRUNCATION_MARKER, LogBatch, truncate_line

log = logging.getLogger(__name__)

#: Columns of ``log_rows``, in order (the ``gpuwatch.logs`` table; ``ts`` as float epoch seconds). ``host``,
#: ``component`` and ``logged_at`` are what the line's header said (:mod:`pipelines.logs.headers`).
LOG_COLUMNS = ("ts", "node", "source", "level", "message", "template_id", "labels", "src_partition", "src_offset",
               "host", "component", "logged_at")
#: Columns of ``template_rows`` (``gpuwatch.log_templates``; ``first_seen``/``last_seen`` float epoch seconds).
TEMPLATE_COLUMNS = ("template_id", "text", "first_seen", "last_seen", "count", "example")
TEMPLATE_TABLE = "log_templates"
#: Columns of ``lineage_rows`` (``gpuwatch.log_template_lineage``; ``changed_at`` float epoch seconds).
LINEAGE_COLUMNS = ("template_id", "successor", "changed_at")
LINEAGE_TABLE = "log_template_lineage"
#: The line written in place of lines a flood made the rate limiter refuse.
RATE_LIMIT_SOURCE = "gpuwatch/rate-limit"
RATE_LIMIT_TEXT = "gpuwatch: <NUM> log lines from this node dropped by the rate limit"
RATE_LIMIT_TEMPLATE_ID = template_id(RATE_LIMIT_TEXT)
_ts_of = attrgetter("ts")


@dataclass
class LogOutput:
    log_rows: list[tuple] = field(default_factory=list)
    template_rows: list[tuple] = field(default_factory=list)
    #: Validated node events, one per critical line (after cooldowns), ready to record as they are.
    events: list[NodeEvent] = field(default_factory=list)
    #: Every log condition holding now for each node and job of the batch; see :class:`Observation`.
    observations: list[Observation] = field(default_factory=list)
    #: Lines the rate limiter refused (counted, pattern-checked, not stored).
    dropped: int = 0
    #: (old template id, its successor, ts): templates that generalised in this batch (see ``miner.lineage``).
    lineage_rows: list[tuple] = field(default_factory=list)
    #: Lines that failed and were skipped (counted in ``counters["errors"]``).
    line_errors: int = 0
    #: Why the whole batch failed, if it did: the caller dead-letters the message with this reason.
    failed: str = ""

    @property
    def conditions(self) -> list[Condition]:
        return [c for o in self.observations for c in o.conditions]


class LogProcessor:
    """Turns log batches into rows, events and alert conditions. One per worker.

    ``state_dir``: where the miner keeps its state (``<state_dir>/miner-<worker>.json``);
    None keeps it in memory. Nothing here raises on bad input: a line that
    breaks something is counted under ``errors`` and skipped.
    """

    def __init__(self, state_dir: Path | str | None = None, *, worker: str = "0",
                 anomaly_settings: LogAnomalySettings | None = None, patterns: PatternBook | None = None,
                 lines_per_s: float = 5_000.0, burst_lines: float = 100_000.0, database: str = "gpuwatch",
                 snapshot_interval_s: float = 60.0, headers: HeaderParser | None = None,
                 sources: LogSources | None = None) -> None:
        self._state_dir, self._worker, self._snapshot_interval_s = state_dir, worker, snapshot_interval_s
        path = Path(state_dir) / f"miner-{worker}.json" if state_dir is not None else None
        self.miner = TemplateMiner(path, snapshot_interval_s=snapshot_interval_s)
        #: Splits each line into header fields and the message the miner sees.
        self.headers = headers or HeaderParser()
        #: Per-source line formats and clustering parameters (``$GPUWATCH_LOG_SOURCES``).
        self.sources = sources if sources is not None else LogSources.load()
        #: (similarity, depth, lead words) -> the miner for sources with those parameters.
        self._miners: dict[tuple, TemplateMiner] = {self.miner.clustering: self.miner}
        #: source -> (line format or None, its miner), worked out on the source's first line.
        self._source_setup: dict[str, tuple[str | None, TemplateMiner]] = {}
        self.patterns = patterns or PatternBook.load()
        self.anomalies = LogAnomalyDetector(anomaly_settings, database)
        self.limiter = NodeRateLimiter(lines_per_s, burst_lines)
        self.counters: Counter = Counter()
        #: Template ids known anywhere in the fleet; "new template" means not in here.
        self.known_templates: set[int] = set(self.miner.templates())
        self._template_error: dict[int, bool] = {}
        self._levels: dict[str, tuple[str, bool | None]] = {}
        #: Pattern pre-check per digit-folded line key (the pre-check's words have no digits).
        self._critical_by_key: dict[bytes, bool] = {}
        self._last_error_log = 0.0

    # -- the hot path ----------------------------------------------------
    def process(self, batch: LogBatch | DecodedBatch, partition: int = 0, offset: int = 0) -> LogOutput:
        out = LogOutput()
        try:
            self._process(batch, partition, offset, out)
        except Exception as e:  # the last line of defence: never let one batch kill the worker
            self.counters["errors"] += 1
            out.failed = f"log batch failed: {type(e).__name__}: {e}"[:1000]
            self._log_error("log batch from %s failed; its lines are counted as errors", batch.node)
        for miner in self._miners.values():
            miner.checkpoint()
        return out

    def _process(self, batch: LogBatch | DecodedBatch, partition: int, offset: int, out: LogOutput) -> None:
        node, records = batch.node, batch.records
        counters = self.counters
        counters["lines_received"] += len(records)
        stamps = list(map(_ts_of, records))
        first_ts, last_ts = min(stamps), max(stamps)
        allowed = self.limiter.admit(node, last_ts, len(records))
        window_s = self.anomalies.settings.window_s
        #: Most batches fall in one window; then lines are counted per template, not per (window, template).
        one_window = int(first_ts // window_s) == int(last_ts // window_s)
        tally = BatchTally(node=node, ts=last_ts)
        templates: dict[int, list] = {}  # tid -> [text, first ts, last ts, lines, example, error lines]
        by_window, errors_by_window, job_errors = tally.template_lines, tally.error_lines, tally.job_error_lines
        rows_append = out.log_rows.append
        might_match = self.patterns.might_match
        parse, setups = self.headers.parse, self._source_setup
        levels, template_error, critical_by_key = self._levels, self._template_error, self._critical_by_key
        successors: dict[int, int] = {}  # old template id -> successor, for templates generalised in this batch
        source = fmt = miner = None  # a batch is usually one file: its setup is looked up once, not per line
        for rec in records[:allowed] if allowed < len(records) else records:
            try:
                msg, ts = rec.message, rec.ts
                if len(msg) > MAX_LINE_CHARS and not msg.endswith(TRUNCATION_MARKER):
                    msg = truncate_line(msg)
                    counters["lines_truncated"] += 1
                if rec.source != source or miner is None:
                    source = rec.source
                    fmt, miner = setups.get(source) or self._setup(source, rec.labels)
                header = parse(msg, source, fmt)
                mined = miner.mine(header[0], ts)
                tid, text, change, _ = mined
                _, logged_at, header_level, component, host, line_fmt = header  # every field of Header
                level, err = levels.get(rec.level or header_level) or self._level(rec.level or header_level)
                if err is None:  # no level: judge by the template's words
                    err = template_error.get(tid)
                    if err is None:
                        err = template_error[tid] = is_error("", text)
                    if err:
                        level = "error"
                agg = templates.get(tid)
                if agg is None:
                    agg = templates[tid] = [text, ts, ts, 0, msg, 0]
                elif ts < agg[1]:
                    agg[1] = ts
                elif ts > agg[2]:
                    agg[2] = ts
                agg[3] += 1
                if not one_window:
                    key = (int(ts // window_s), tid)
                    by_window[key] = by_window.get(key, 0) + 1
                labels = rec.labels
                job = labels.get("job") if labels else None
                if job:
                    tally.jobs.add(job)
                if err:
                    agg[5] += 1
                    if not one_window:
                        w = int(ts // window_s)
                        errors_by_window[w] = errors_by_window.get(w, 0) + 1
                    if job:
                        jk = (job, int(ts // window_s))
                        job_errors[jk] = job_errors.get(jk, 0) + 1
                if change != "none":
                    self._learned(mined, msg, ts, err, tally)
                    if mined.previous:
                        out.lineage_rows.extend((old, tid, ts) for old in miner.last_succession)
                        successors.update(dict.fromkeys(miner.last_succession, tid))
                line_key = miner.last_line_key
                if line_key is None:
                    maybe_critical = might_match(msg)
                else:  # the pattern words may sit in the header too (NCCL WARN): key on both
                    line_key = (line_key, header_level, line_fmt)
                    maybe_critical = critical_by_key.get(line_key)
                    if maybe_critical is None:
                        if len(critical_by_key) >= 200_000:
                            critical_by_key.clear()
                        maybe_critical = critical_by_key[line_key] = might_match(msg)
                if maybe_critical:
                    self._critical(node, ts, msg, source, labels, out)
                rows_append((ts, node, source, level, msg, tid, labels, partition, offset, host, component,
                             logged_at))
            except Exception:
                counters["errors"] += 1
                out.line_errors += 1
                self._log_error("log line from %s failed; counted and skipped", node)
        if allowed < len(records):
            self._refused(node, records[allowed:], partition, offset, templates, out)
        counters["lines_stored"] += len(out.log_rows)
        w = int(last_ts // window_s)
        for tid, (text, first, last, n, example, errors) in templates.items():
            out.template_rows.append((tid, text, first, last, n, example))
            if one_window:
                by_window[(w, tid)] = n
                if errors:
                    errors_by_window[w] = errors_by_window.get(w, 0) + errors
            if tid not in successors:
                tally.texts[tid] = text
        if successors:  # the anomaly detector counts events: lines under an earlier id go to the newest one
            self._follow_lineage(successors, tally)
        counters["new_templates"] += len(tally.new_templates)
        warm = self.anomalies.warm(self.miner.born_ts, self.miner.lines_mined, last_ts)
        out.observations = self.anomalies.observe(tally, warm=warm)
        counters["conditions"] += len(out.conditions)

    def _follow_lineage(self, successors: dict[int, int], tally: BatchTally) -> None:
        for old, new in successors.items():  # a template generalised twice in one batch: follow to the last
            for _ in range(len(successors)):
                if new not in successors:
                    break
                new = successors[new]
            successors[old] = new
        counts: dict[tuple[int, int], int] = {}
        for (w, tid), n in tally.template_lines.items():
            key = (w, successors.get(tid, tid))
            counts[key] = counts.get(key, 0) + n
        tally.template_lines = counts
        self.anomalies.succeed(successors)

    def _learned(self, mined: MinedLine, msg: str, ts: float, err: bool, tally: BatchTally) -> None:
        """The miner made a new template (or generalised one): note it, and flag it if the fleet never saw it."""
        if mined.template_id in self.known_templates:
            return
        self.known_templates.add(mined.template_id)
        if mined.change == "created":
            tally.new_templates.append(NewTemplate(mined.template_id, mined.text, msg, ts, err))

    def _critical(self, node: str, ts: float, msg: str, source: str, labels: dict, out: LogOutput) -> None:
        before = self.patterns.suppressed
        ev = self.patterns.match(node, ts, msg, source=source, labels=labels)
        if ev is not None:
            out.events.append(ev)
            self.counters["events"] += 1
        elif self.patterns.suppressed > before:
            self.counters["events_suppressed"] += 1

    def _refused(self, node: str, excess, partition: int, offset: int, templates: dict, out: LogOutput) -> None:
        """Lines over the node's rate: count them, keep their critical events, store one summary row."""
        n = len(excess)
        out.dropped = n
        self.counters["lines_dropped_rate_limit"] += n
        for rec in excess:
            try:
                if self.patterns.might_match(rec.message):
                    self._critical(node, rec.ts, truncate_line(rec.message), rec.source, rec.labels, out)
            except Exception:
                self.counters["errors"] += 1
        ts = max(r.ts for r in excess)
        text = RATE_LIMIT_TEXT.replace("<NUM>", str(n))
        out.log_rows.append((ts, node, RATE_LIMIT_SOURCE, "warning", text, RATE_LIMIT_TEMPLATE_ID, {}, partition,
                             offset, "", "", ""))
        templates[RATE_LIMIT_TEMPLATE_ID] = [RATE_LIMIT_TEXT, ts, ts, 1, text, 0]

    def _level(self, raw: str) -> tuple[str, bool | None]:
        """Normalised level and whether it is an error (None: no level, judge by the text)."""
        level = raw.strip().lower()[:16]
        result = (level, is_error(level, "") if level else None)
        if len(self._levels) < 1000:
            self._levels[raw] = result
        return result

    def _log_error(self, msg: str, *args) -> None:
        now = time.monotonic()
        if now - self._last_error_log > 10:  # one traceback per 10 s: a bad stream must not flood our own log
            self._last_error_log = now
            log.exception(msg, *args)

    def mine_line(self, line: str, source: str = "") -> MinedLine:
        """The template of one raw line, as :meth:`process` finds it (header split off first)."""
        fmt, miner = self._source_setup.get(source) or self._setup(source, {})
        return miner.mine(self.headers.parse(line, source, fmt).msg)

    def _setup(self, source: str, labels: dict) -> tuple[str | None, TemplateMiner]:
        """A source's line format (its config entry, else the agent's ``log_format`` label) and miner."""
        profile = self.sources.profile_for(source)
        fmt = profile.format or (labels.get(FORMAT_LABEL) if labels else None) or None
        if fmt is not None:
            try:
                HeaderParser(default=fmt)
            except HeaderFormatError as e:
                log.warning("source %s: %s; using the built-in formats", source[-200:], e)
                fmt = None
        miner = self._miners.get(profile.clustering)
        if miner is None:
            sim, depth, lead = profile.clustering
            path = None
            if self._state_dir is not None:
                path = Path(self._state_dir) / f"miner-{self._worker}-s{int(sim * 100)}-d{depth}-l{lead}.json"
            miner = self._miners[profile.clustering] = TemplateMiner(
                path, sim_th=sim, depth=depth, lead_words=lead, snapshot_interval_s=self._snapshot_interval_s)
        if len(self._source_setup) >= 10_000:
            self._source_setup.clear()
        self._source_setup[source] = (fmt, miner)
        return fmt, miner

    # -- fleet knowledge and lifecycle -------------------------------------
    def learn_fleet_templates(self, templates: Iterable[tuple[int, str]]) -> int:
        """Mark templates other workers found as known and teach them to the miner.

        ``templates``: (template_id, text), most recently seen first, e.g. from
        :func:`pipelines.logs.explain.fleet_templates`. Returns how many were new here.
        """
        fresh = [(tid, text) for tid, text in templates if tid not in self.known_templates]
        self.known_templates.update(tid for tid, _ in fresh)
        self.miner.seed(text for _, text in fresh)
        return len(fresh)

    def stats(self) -> dict[str, int]:
        """Counters for metrics export: lines_received, lines_stored, lines_dropped_rate_limit,
        lines_truncated, errors, events, events_suppressed, new_templates... Lines dropped per
        node are in ``self.limiter.dropped``."""
        return {**self.counters, "templates": sum(m.cluster_count for m in self._miners.values()),
                "new_templates_suppressed": self.anomalies.new_templates_suppressed}

    def close(self) -> None:
        """Write the miner's state; call on shutdown (and on partition revocation)."""
        for miner in self._miners.values():
            miner.close()
