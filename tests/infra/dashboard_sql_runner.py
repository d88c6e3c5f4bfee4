"""Run Grafana dashboard SQL against real chDB with gpuwatch's DDL, in its own process.

chDB allows one data path per process and the test process already holds one, so
tests/infra/test_deployment_files.py starts this script with ``sys.executable``.

Usage: python tests/infra/dashboard_sql_runner.py DATA_DIR < queries.json -> one JSON object on stdout
    queries.json: [{"id": "alerts.json#3/A", "sql": "SELECT ..."}, ...]  (macros already expanded)
    stdout:       {"id": {"error": str | null, "columns": [...], "types": [...], "rows": [[...], ...]}}

Before the queries run, a few rows go into the tables the dashboards read, so a query
that should find something can be checked for finding it.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pipelines.store import Store, StoreError  # noqa: E402

NOW = datetime.now(timezone.utc).replace(microsecond=0)
#: Alert fingerprints of the sample: RESOLVED fired and resolved; FIRING is firing now.
RESOLVED, FIRING = "a" * 16, "b" * 16


def _ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


def seed(store: Store) -> None:
    metrics = []
    for minutes in (3, 2, 1, 0.5):
        for gpu in (0, 1):
            for metric, value, unit in (("gpu_temp_c", 70.0 + gpu, "C"), ("gpu_util_pct", 95.0, "%"),
                                        ("power_w", 610.0, "W"), ("fb_used_bytes", 60e9, "B"),
                                        ("fb_free_bytes", 20e9, "B"), ("ecc_dbe_volatile_total", 0.0, ""),
                                        ("sm_clock_mhz", 1980.0, "MHz")):
                metrics.append((_ago(minutes), "node-0", gpu, f"GPU-{gpu}", metric, value, unit, {}, 0,
                                len(metrics)))
    for minutes in (3, 2, 1, 0.5):  # a training job's SDK reports (node-level, gpu -1, labelled with the job)
        for metric, value in (("job_step", 100 - minutes), ("job_loss", 2.0 + minutes / 10),
                              ("job_tokens_per_s", 5000.0), ("job_grad_norm", 1.5)):
            metrics.append((_ago(minutes), "node-0", -1, "", metric, value, "", {"job": "job-a"}, 0, len(metrics)))
        metrics.append((_ago(minutes), "node-0", 0, "GPU-0", "gpu_util_pct", 95.0, "%", {"job": "job-a"}, 0,
                        len(metrics)))
    store.insert("metrics_raw", metrics, ["ts", "node", "gpu", "uuid", "metric", "value", "unit", "labels",
                                          "src_partition", "src_offset"])
    store.insert("logs", [(_ago(m), "node-0", "train.log", level, text, tid, {}, 0, i)
                          for i, (m, level, text, tid) in enumerate([
                              (3, "info", "step 97 loss 2.3", 11), (2, "info", "step 98 loss 2.2", 11),
                              (1, "error", "NCCL WARN timeout on rank 3", 22)])],
                 ["ts", "node", "source", "level", "message", "template_id", "labels", "src_partition", "src_offset"])
    store.insert("log_templates", [(11, "step <NUM> loss <NUM>", _ago(3), _ago(2), 2, "step 97 loss 2.3"),
                                   (22, "NCCL WARN timeout on rank <NUM>", _ago(1), _ago(1), 1,
                                    "NCCL WARN timeout on rank 3")],
                 ["template_id", "text", "first_seen", "last_seen", "count", "example"])
    store.insert("features_1m", [(_ago(2).replace(second=0), "node-0", 0, "GPU-0", m, 60, 60.0, 72.0, 70.0, 71.0, 72.0)
                                 for m in ("gpu_temp_c", "fb_used_bytes")],
                 ["window_start", "node", "gpu", "uuid", "metric", "count", "min", "max", "mean", "last", "p95"])
    alert_cols = ["event_ts", "fingerprint", "status", "alertname", "severity", "node", "gpu", "source", "starts_at",
                  "ends_at", "labels", "annotations", "evidence", "evidence_query"]

    def alert(ts, fp, status, name, severity, starts, ends=None):
        return (ts, fp, status, name, severity, "node-0", 0, "rules", starts, ends, {"node": "node-0"},
                {"summary": f"{name} on node-0"}, "", "")

    store.insert("alerts", [
        alert(_ago(20), RESOLVED, "firing", "GpuEccSingleBitStorm", "warning", _ago(20)),
        alert(_ago(10), RESOLVED, "resolved", "GpuEccSingleBitStorm", "warning", _ago(20), _ago(10)),
        alert(_ago(5), FIRING, "firing", "GpuTemperatureHigh", "critical", _ago(5)),
    ], alert_cols)
    store.insert("notification_attempts", [
        (_ago(5), "oncall", "webhook", "{}:{alertname=\"GpuTemperatureHigh\"}", "firing", [FIRING], 1, 1,
         "delivered", 0, "", 12.5),
        (_ago(19), "oncall", "webhook", "{}:{alertname=\"GpuEccSingleBitStorm\"}", "firing", [RESOLVED], 1, 1,
         "failed_recoverable", 1, "HTTP 503", 30.0),
    ], ["ts", "receiver", "integration", "group_key", "status", "fingerprints", "alert_count", "attempt", "outcome",
        "recoverable", "error", "duration_ms"])
    store.insert("node_events", [(_ago(4), "node-0", 1, "xid", 79, "critical", "reboot", "GPU has fallen off the bus",
                                  "NVRM: Xid 79", "0000:18:00.0", {})],
                 ["ts", "node", "gpu", "source", "code", "severity", "action", "title", "message", "pci_bus_id",
                  "labels"])


def run(data: Path, queries: list[dict]) -> dict:
    store = Store(f"chdb://{data}", "gpuwatch")
    store.apply_schema()
    seed(store)
    out = {}
    for q in queries:
        try:
            res = store.query(q["sql"])
            out[q["id"]] = {"error": None, "columns": res.columns, "types": res.types,
                            "rows": json.loads(json.dumps(res.rows, default=str))}
        except StoreError as e:
            out[q["id"]] = {"error": str(e), "columns": [], "types": [], "rows": []}
    store.close()
    return out


if __name__ == "__main__":
    print(json.dumps(run(Path(sys.argv[1]), json.load(sys.stdin))))
