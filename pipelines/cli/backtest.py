"""``gpuwatch backtest``: run the detectors over recorded metrics, offline, and write scores per timestamp.

    gpuwatch backtest metrics.csv --out scores.csv
    gpuwatch backtest metrics.csv --detector straggler --detector exhaustion --alerts alerts.jsonl
    gpuwatch backtest series.csv --out verdicts.csv          # any univariate series: timestamp,value
    gpuwatch backtest --from-clickhouse "SELECT ts, node, gpu, metric, value, labels
        FROM gpuwatch.metrics_raw WHERE ts > now() - INTERVAL 1 HOUR" --out scores.csv

Two CSV shapes are read:

- gpuwatch samples, a header with at least ``ts,node,gpu,metric,value`` (``uuid``
  and ``labels`` optional; ``labels`` as JSON or a ClickHouse map literal);
- any univariate series, a header of a time column (``timestamp``, ``ts`` or
  ``time``) and ``value``; it is scored as metric ``--metric`` (default ``value``)
  of node ``--node``.

Timestamps are epoch seconds or ISO 8601 (``YYYY-MM-DD hh:mm:ss[.fff]``, ``T`` or
space, with an offset such as ``Z``, ``+02:00`` or ``-05:00``; none means UTC).
A metric that no detection family names is scored by the generic family, with a
warning, never skipped. Threshold rules run too (``--rules``, default the shipped
rules). ``--from-clickhouse`` reads the samples from a read-only query, through
``gpuwatch query``'s machinery.

Output: for a univariate series, ``--out`` gets one row per input row:
``timestamp,value,anomaly_score,anomaly`` (score in [0, 1], 0.5 at the detector's
threshold; verdict 1 at the start of an anomaly episode, at most once per
``--refractory`` rows; ``--verdict-score U`` also counts rows scoring U or more as
anomalous). For samples, ``--out`` gets the columns of
``gpuwatch.anomaly_scores`` and ``--rows`` one row per input sample with its
score and verdict. Alert events, decided as the pipeline decides them, go to
``--alerts`` as JSON lines; a summary goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import math
import os
import sys

from pipelines.cli import UsageError
from pipelines.cli.arg_types import in_range

#: --detector NAME -> the config sections that run it.
DETECTOR_SECTIONS = {
    "robust_zscore": ("families",), "gpu_multivariate": ("multivariate",), "straggler": ("straggler",),
    "peer_group": ("hotspot", "job_peers"), "job_health": ("job_health",), "exhaustion": ("exhaustion",),
    "absence": ("gpu_absence", "node_absence"),
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("backtest", help="run the detectors over a CSV of recorded metrics, offline",
                       description="Replay recorded metrics through detection (no Kafka, no Faust) and write "
                                   "anomaly scores per timestamp, and the alerts they would have raised.")
    p.add_argument("file", nargs="?", help="CSV with columns ts,node,gpu,metric,value[,uuid,labels] "
                                          "or timestamp,value")
    p.add_argument("--from-clickhouse", metavar="SQL",
                   help="read the samples from this read-only query instead (same columns)")
    p.add_argument("--clickhouse", metavar="DSN", help="chdb:///path or http(s)://... (default from settings)")
    p.add_argument("--detector", action="append", default=[], metavar="NAME",
                   help=f"run only this detector (repeatable): {', '.join(DETECTOR_SECTIONS)}")
    p.add_argument("--config", help="detection YAML (default: pipelines/detect/detection.yaml)")
    p.add_argument("--out", help="scores CSV to write (default: stdout)")
    p.add_argument("--alerts", help="write alert events here as JSON lines")
    p.add_argument("--all-scores", action="store_true",
                   help="one row per subject, not only each GPU's top subject and the anomalous ones")
    p.add_argument("--rows", metavar="CSV", help="one row per input sample with its score in [0, 1] and verdict")
    p.add_argument("--metric", default="value", help="metric name of a timestamp,value series (default: value)")
    p.add_argument("--node", default="series", help="node name of a timestamp,value series (default: series)")
    p.add_argument("--rules", metavar="YAML", help="threshold rules file (default: the shipped rules)")
    p.add_argument("--no-rules", action="store_true", help="run the detectors only")
    p.add_argument("--refractory", type=in_range(int, 1), default=150, metavar="ROWS",
                   help="at most one verdict per series in this many rows (default: 150)")
    p.add_argument("--verdict-score", type=in_range(float, 0, 1, low_open=True), metavar="U",
                   help="a verdict also where the score in [0, 1] reaches U (default: only where the detector "
                        "flags the row, which is score 0.5); below 0.5 trades false alerts for earlier, more hits")
    p.set_defaults(func=run)


def _config(args, univariate: bool = False):
    from pipelines.detect.config import DetectionConfig

    try:
        cfg = DetectionConfig.from_yaml(args.config) if args.config else DetectionConfig.default()
    except ValueError as e:
        errors = getattr(e, "errors", None)  # pydantic's: one line naming the first bad field
        msg = (f"{'.'.join(map(str, errors()[0]['loc']))}: {errors()[0]['msg']}" if callable(errors)
               else str(e).splitlines()[0])
        raise UsageError(msg if args.config is None or str(args.config) in msg else f"{args.config}: {msg}") from None
    unknown = [d for d in args.detector if d not in DETECTOR_SECTIONS]
    if unknown:
        raise UsageError(f"unknown detector {unknown[0]!r}; choose from {', '.join(DETECTOR_SECTIONS)}")
    update: dict = {"score_rows": "all"} if args.all_scores or args.rows or univariate else {}
    if args.detector:
        keep = {s for d in args.detector for s in DETECTOR_SECTIONS[d]}
        for section in {s for ss in DETECTOR_SECTIONS.values() for s in ss} - keep:
            update[section] = {} if section == "families" else None
    families = update.get("families", cfg.families)
    if "generic" in families:  # every series gets a score: metrics no family names go to the generic one
        update["default_family"] = cfg.default_family or "generic"
    elif cfg.default_family not in families:
        update["default_family"] = None
    return cfg.model_copy(update=update)


def _parse_ts(s: str) -> float:
    """Epoch seconds from epoch seconds or ISO 8601, honouring any UTC offset (none means UTC).

    >>> _parse_ts("2024-01-01T10:00:00-05:00") - _parse_ts("2024-01-01 15:00:00")
    0.0
    """
    try:
        return float(s)
    except ValueError:
        from datetime import datetime, timezone

        try:
            t = datetime.fromisoformat(s.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"timestamp {s!r} is neither epoch seconds nor ISO 8601 "
                             "(YYYY-MM-DD hh:mm:ss[+hh:mm])") from None
        return (t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)).timestamp()


def _parse_labels(s: str | dict | None) -> dict:
    import orjson

    if isinstance(s, dict):
        return {str(k): str(v) for k, v in s.items()}
    if not s or s in ("{}", ""):
        return {}
    try:
        labels = orjson.loads(s)
    except orjson.JSONDecodeError:
        try:
            labels = orjson.loads(s.replace("'", '"'))  # ClickHouse map literal {'job':'a'}
        except orjson.JSONDecodeError:
            raise UsageError(f"labels {s[:60]!r} are neither JSON nor a ClickHouse map") from None
    if not isinstance(labels, dict):
        raise ValueError(f"labels {s[:60]!r} are not an object of names and values")
    if not all(isinstance(v, (str, int, float, bool)) for v in labels.values()):
        raise ValueError(f"labels {s[:60]!r} hold a value that is not a string or a number")
    return {str(k): str(v) for k, v in labels.items()}


NEEDED = {"ts", "node", "gpu", "metric", "value"}


def _normalise(records, where: str, first_line: int = 2) -> list[dict]:
    rows = []
    for n, r in enumerate(records, start=first_line):
        try:
            missing = [k for k in ("ts", "node", "gpu", "metric", "value") if r.get(k) is None]
            if missing:
                raise ValueError(f"no {', '.join(missing)} (a short row?)")
            ts = r["ts"] if isinstance(r["ts"], (int, float)) else _parse_ts(str(r["ts"]))
            value = float(r["value"])
            if not math.isfinite(value):  # the samples' model refuses it later, without saying which row
                raise ValueError(f"value {r['value']} is not a finite number")
            try:
                gpu = int(r["gpu"])
            except ValueError:
                raise ValueError(f"gpu {r['gpu']!r} is not a whole number") from None
            if not -1 <= gpu <= 1023:  # what the samples' model accepts: -1 for node-level series
                raise ValueError(f"gpu {gpu} is not from -1 to 1023")
            if not r["node"] or not r["metric"]:
                raise ValueError("node and metric must not be empty")
            rows.append({"ts": float(ts), "node": r["node"], "gpu": gpu, "metric": r["metric"],
                         "value": value, "uuid": r.get("uuid") or "",
                         "labels": _parse_labels(r.get("labels")), "raw_ts": r.get("raw_ts", r["ts"]), "row": n})
        except (ValueError, TypeError) as e:
            raise UsageError(f"{where} row {n}: {e}") from None
    rows.sort(key=lambda r: (r["ts"], r["node"]))  # stable: rows of one timestamp keep their order
    return rows


TIME_COLUMNS = ("timestamp", "ts", "time")


def read_rows(path: str, metric: str = "value", node: str = "series") -> tuple[list[dict], bool]:
    """Sample rows from a CSV of either shape, and whether it was a univariate ``timestamp,value`` series.

    The file is decoded at once (its rows are sorted in memory anyway), so a byte that is not UTF-8 is
    reported at its offset in the file; a byte-order mark (spreadsheet exports) is dropped.
    """
    try:
        with open(path, "rb") as raw:
            text = raw.read().decode("utf-8-sig")
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise UsageError(f"{path} is not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start})") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    cols = set(reader.fieldnames or [])
    tcol = next((c for c in TIME_COLUMNS if c in cols), None)
    if "value" in cols and tcol and not cols & {"node", "gpu", "metric"}:
        series = ({"ts": r[tcol], "node": node, "gpu": -1, "metric": metric, "value": r["value"],
                   "raw_ts": r[tcol]} for r in reader)
        return _normalise(series, path), True
    missing = NEEDED - cols
    if missing:
        raise UsageError(f"{path} lacks column(s) {', '.join(sorted(missing))}; "
                         "need ts,node,gpu,metric,value[,uuid,labels] or timestamp,value")
    return _normalise(reader, path), False


def query_rows(sql: str, dsn: str | None) -> tuple[list[dict], bool]:
    """Samples from a read-only ClickHouse query, through ``gpuwatch query``'s machinery."""
    from pipelines.cli.query import fetch
    from pipelines.settings import CommonSettings
    from pipelines.store import StoreError

    settings = CommonSettings(**({"clickhouse_dsn": dsn} if dsn else {}))  # checked as `gpuwatch query` checks it
    try:
        columns, rows = fetch(sql, settings.query_dsn(), settings.clickhouse_database, settings)
    except StoreError as e:
        raise UsageError(str(e)) from None
    missing = NEEDED - set(columns)
    if missing:
        raise UsageError(f"the query returns no column(s) {', '.join(sorted(missing))}; "
                         "select ts, node, gpu, metric, value[, uuid, labels]")
    return _normalise((dict(zip(columns, r)) for r in rows), "query", first_line=1), False


def _rules(args):
    if args.no_rules:
        return None
    from pipelines.transforms.rules import RuleError, RuleSet

    try:
        return RuleSet.from_file(args.rules)
    except (RuleError, OSError) as e:
        raise UsageError(str(e)) from None


class _Outputs:
    """The run's output files, written beside their targets and renamed over them only when the whole run
    succeeded: a failure half-way (a bad row, an unwritable --alerts) leaves the last good files as they were."""

    def __init__(self, paths: list[str | None]) -> None:
        given = [p for p in paths if p]
        if len({os.path.abspath(p) for p in given}) != len(given):
            raise UsageError("--out, --rows and --alerts must be different files")
        for p in given:  # every target checked before anything is written
            if os.path.isdir(p):
                raise UsageError(f"{p} is a directory, not a file to write")
            parent = os.path.dirname(os.path.abspath(p))
            if not os.path.isdir(parent):
                raise UsageError(f"cannot write {p}: {parent} does not exist")
            if not os.access(parent, os.W_OK):
                raise UsageError(f"cannot write {p}: {parent} is not writable")
        self._open: list[tuple[object, str, str]] = []  # (file, temporary path, target)

    def open(self, path: str, mode: str):
        tmp = f"{path}.{os.getpid()}.partial"
        f = open(tmp, mode, newline="") if "b" not in mode else open(tmp, mode)
        self._open.append((f, tmp, path))
        return f

    def commit(self) -> None:
        for f, tmp, path in self._open:
            f.close()
            os.replace(tmp, path)

    def discard(self) -> None:
        for f, tmp, _ in self._open:
            f.close()
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def run(args: argparse.Namespace) -> int:
    import orjson

    from pipelines.detect.engine import unit_score
    from pipelines.detect.observation import SCORE_COLUMNS
    from pipelines.detect.replay import Backtest, batches_from_rows
    from pipelines.detect.verdicts import EpisodeVerdicts

    if (args.file is None) == (args.from_clickhouse is None):
        raise UsageError("give a CSV file or --from-clickhouse SQL (one of them)")
    rows, univariate = (read_rows(args.file, args.metric, args.node) if args.file
                        else query_rows(args.from_clickhouse, args.clickhouse))
    cfg = _config(args, univariate)
    bt = Backtest(cfg, rules=_rules(args))
    outputs = _Outputs([args.out, args.rows, args.alerts])
    out = outputs.open(args.out, "w") if args.out else sys.stdout
    rows_f = outputs.open(args.rows, "w") if args.rows else None
    alerts_f = outputs.open(args.alerts, "wb") if args.alerts else None
    verdicts = EpisodeVerdicts(args.refractory)
    n_scores = n_batches = n_flagged = 0
    firing: list[str] = []
    by_batch: dict[tuple, list[dict]] = {}
    for r in rows:
        by_batch.setdefault((r["ts"], r["node"]), []).append(r)
    try:
        writer = csv.writer(out)
        writer.writerow(("timestamp", "value", "anomaly_score", "anomaly") if univariate else SCORE_COLUMNS)
        per_row = csv.writer(rows_f) if rows_f else None
        if per_row:
            per_row.writerow(("ts", "node", "gpu", "metric", "value", "anomaly_score", "anomaly"))
        for batch in batches_from_rows(rows):
            obs, events = bt.observe(batch)
            n_batches += 1
            if not univariate:
                for r in obs.scores:
                    writer.writerow((f"{r[0]:.3f}", *r[1:5], f"{r[5]:.6g}", f"{r[6]:.6g}", r[7]))
            n_scores += len(obs.scores)
            if univariate or per_row:
                best: dict[tuple[int, str], tuple[float, int]] = {}
                for r in obs.scores:
                    u = unit_score(r[5], r[6])
                    k = (r[2], r[4])
                    if u > best.get(k, (-1.0, 0))[0]:
                        best[k] = (u, max(r[7], best.get(k, (0.0, 0))[1]))
                for src in by_batch[(batch.ts, batch.node)]:
                    u, anom = best.get((src["gpu"], src["metric"]), (0.0, 0))
                    if args.verdict_score is not None:
                        anom = anom or u >= args.verdict_score
                    verdict = verdicts.step((src["node"], src["gpu"], src["metric"]), anom)
                    n_flagged += verdict
                    if univariate:
                        writer.writerow((src["raw_ts"], f"{src['value']:.10g}", f"{u:.6f}", verdict))
                    else:
                        per_row.writerow((f"{src['ts']:.3f}", src["node"], src["gpu"], src["metric"],
                                          f"{src['value']:.10g}", f"{u:.6f}", verdict))
            for e in events:
                if alerts_f:
                    alerts_f.write(orjson.dumps(e.model_dump()) + b"\n")
                if e.status == "firing":
                    firing.append(f"  {e.alertname} {dict(e.labels)} at {e.starts_at:.0f}: "
                                  f"{e.annotations.get('summary', '')}")
    except BaseException:
        outputs.discard()
        raise
    outputs.commit()
    unknown = sorted({m for nd in bt.nodes.values() for m in getattr(nd, "unknown_metrics", ())})
    if unknown:
        print(f"backtest: warning: {len(unknown)} metric(s) in no detection family, scored by the generic "
              f"family: {', '.join(unknown[:10])}{' ...' if len(unknown) > 10 else ''}", file=sys.stderr)
    print(f"backtest: {len(rows)} samples in {n_batches} batches -> {n_scores} score rows, "
          f"{len(firing)} alerts fired" + (f", {n_flagged} verdicts" if univariate or per_row else ""),
          file=sys.stderr)
    for line in firing:
        print(line, file=sys.stderr)
    return 0
