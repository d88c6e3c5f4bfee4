"""``gpuwatch backtest``: run the detectors over recorded metrics, offline, and write scores per timestamp.

    gpuwatch backtest metrics.csv --out scores.csv
    gpuwatch backtest metrics.csv --detector straggler --detector exhaustion --alerts alerts.jsonl
    gpuwatch backtest --from-clickhouse "SELECT ts, node, gpu, metric, value, labels
        FROM gpuwatch.metrics_raw WHERE ts > now() - INTERVAL 1 HOUR" --out scores.csv

The CSV has a header with at least ``ts,node,gpu,metric,value`` (``uuid`` and
``labels`` optional): ``ts`` in epoch seconds or as ``YYYY-MM-DD hh:mm:ss[.fff]``
UTC (what ClickHouse exports from ``metrics_raw``), ``labels`` as JSON or a
ClickHouse map literal. ``--from-clickhouse`` reads the same columns from a
read-only query, through ``gpuwatch query``'s machinery (the pipeline that owns
a chDB path answers it). Scores go to ``--out`` (or stdout) with the columns of
``gpuwatch.anomaly_scores``; alert events, decided as the pipeline decides them,
go to ``--alerts`` as JSON lines; a summary goes to stderr.
"""

from __future__ import annotations

import argparse
import csv
import sys

from pipelines.cli import UsageError

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
    p.add_argument("file", nargs="?", help="CSV with columns ts,node,gpu,metric,value[,uuid,labels]")
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
    p.set_defaults(func=run)


def _config(args):
    from pipelines.detect.config import DetectionConfig

    try:
        cfg = DetectionConfig.from_yaml(args.config) if args.config else DetectionConfig.default()
    except ValueError as e:
        raise UsageError(str(e).splitlines()[0] if args.config is None else f"{args.config}: {e}") from None
    unknown = [d for d in args.detector if d not in DETECTOR_SECTIONS]
    if unknown:
        raise UsageError(f"unknown detector {unknown[0]!r}; choose from {', '.join(DETECTOR_SECTIONS)}")
    update = {"score_rows": "all"} if args.all_scores else {}
    if args.detector:
        keep = {s for d in args.detector for s in DETECTOR_SECTIONS[d]}
        for section in {s for ss in DETECTOR_SECTIONS.values() for s in ss} - keep:
            update[section] = {} if section == "families" else None
    return cfg.model_copy(update=update)


def _parse_ts(s: str) -> float:
    try:
        return float(s)
    except ValueError:
        from datetime import datetime, timezone

        try:
            return datetime.fromisoformat(s.strip().replace("Z", "+00:00")).replace(
                tzinfo=timezone.utc).timestamp() if "+" not in s else datetime.fromisoformat(s).timestamp()
        except ValueError:
            raise UsageError(f"timestamp {s!r} is neither epoch seconds nor YYYY-MM-DD hh:mm:ss") from None


def _parse_labels(s: str | dict | None) -> dict:
    import orjson

    if isinstance(s, dict):
        return {str(k): str(v) for k, v in s.items()}
    if not s or s in ("{}", ""):
        return {}
    try:
        return orjson.loads(s)
    except orjson.JSONDecodeError:
        try:
            return orjson.loads(s.replace("'", '"'))  # ClickHouse map literal {'job':'a'}
        except orjson.JSONDecodeError:
            raise UsageError(f"labels {s[:60]!r} are neither JSON nor a ClickHouse map") from None


NEEDED = {"ts", "node", "gpu", "metric", "value"}


def _normalise(records, where: str, first_line: int = 2) -> list[dict]:
    rows = []
    for n, r in enumerate(records, start=first_line):
        try:
            ts = r["ts"] if isinstance(r["ts"], (int, float)) else _parse_ts(str(r["ts"]))
            rows.append({"ts": float(ts), "node": r["node"], "gpu": int(r["gpu"]), "metric": r["metric"],
                         "value": float(r["value"]), "uuid": r.get("uuid") or "",
                         "labels": _parse_labels(r.get("labels"))})
        except (ValueError, TypeError) as e:
            raise UsageError(f"{where} row {n}: {e}") from None
    rows.sort(key=lambda r: (r["ts"], r["node"]))
    return rows


def read_rows(path: str) -> list[dict]:
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = NEEDED - set(reader.fieldnames or [])
            if missing:
                raise UsageError(f"{path} lacks column(s) {', '.join(sorted(missing))}; "
                                 "need ts,node,gpu,metric,value[,uuid,labels]")
            return _normalise(reader, path)
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None


def query_rows(sql: str, dsn: str | None) -> list[dict]:
    """Samples from a read-only ClickHouse query, through ``gpuwatch query``'s machinery."""
    from pipelines.cli.query import fetch
    from pipelines.settings import CommonSettings
    from pipelines.store import StoreError

    settings = CommonSettings()
    try:
        columns, rows = fetch(sql, dsn or settings.dsn(), settings.clickhouse_database)
    except StoreError as e:
        raise UsageError(str(e)) from None
    missing = NEEDED - set(columns)
    if missing:
        raise UsageError(f"the query returns no column(s) {', '.join(sorted(missing))}; "
                         "select ts, node, gpu, metric, value[, uuid, labels]")
    return _normalise((dict(zip(columns, r)) for r in rows), "query", first_line=1)


def run(args: argparse.Namespace) -> int:
    import orjson

    from pipelines.detect.observation import SCORE_COLUMNS
    from pipelines.detect.replay import Backtest, batches_from_rows

    cfg = _config(args)
    if (args.file is None) == (args.from_clickhouse is None):
        raise UsageError("give a CSV file or --from-clickhouse SQL (one of them)")
    rows = read_rows(args.file) if args.file else query_rows(args.from_clickhouse, args.clickhouse)
    bt = Backtest(cfg)
    out = open(args.out, "w", newline="") if args.out else sys.stdout
    alerts_f = open(args.alerts, "wb") if args.alerts else None
    n_scores = n_batches = 0
    firing: list[str] = []
    try:
        writer = csv.writer(out)
        writer.writerow(SCORE_COLUMNS)
        for batch in batches_from_rows(rows):
            obs, events = bt.observe(batch)
            n_batches += 1
            for r in obs.scores:
                writer.writerow((f"{r[0]:.3f}", *r[1:5], f"{r[5]:.6g}", f"{r[6]:.6g}", r[7]))
            n_scores += len(obs.scores)
            for e in events:
                if alerts_f:
                    alerts_f.write(orjson.dumps(e.model_dump()) + b"\n")
                if e.status == "firing":
                    firing.append(f"  {e.alertname} {dict(e.labels)} at {e.starts_at:.0f}: "
                                  f"{e.annotations.get('summary', '')}")
    finally:
        if args.out:
            out.close()
        if alerts_f:
            alerts_f.close()
    print(f"backtest: {len(rows)} samples in {n_batches} batches -> {n_scores} score rows, "
          f"{len(firing)} alerts fired", file=sys.stderr)
    for line in firing:
        print(line, file=sys.stderr)
    return 0
