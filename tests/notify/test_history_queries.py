"""The notifier's ClickHouse tables and the ready queries, on real chDB (in a subprocess).

Rows go in as the pipeline's writer will store HistoryRecords (float epoch
seconds become DateTime64), then each query file runs and its numbers are checked.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from schemas.history import HISTORY_TABLES, HistoryRecord

ROOT = Path(__file__).resolve().parents[2]
QUERIES = ROOT / "infra" / "clickhouse" / "queries"

SCRIPT = r'''
import json, sys, time
from datetime import datetime, timezone
from pipelines.store import Store

def dt(x):
    return datetime.fromtimestamp(x, tz=timezone.utc)

store = Store(sys.argv[1])
store.apply_schema()
now = time.time()
t0 = now - 10 * 3600
alert_cols = ["event_ts", "fingerprint", "status", "alertname", "severity", "node", "gpu", "source", "starts_at",
              "ends_at", "labels", "annotations", "evidence", "evidence_query"]
rows = []
# GpuHot on n1 (model H100): incident 1 from t0 to t0+600, incident 2 from t0+4200 to t0+4500.
for start, end in ((t0, t0 + 600), (t0 + 4200, t0 + 4500)):
    for status, ts in (("firing", start), ("resolved", end)):
        rows.append([dt(ts), "aaaaaaaaaaaaaaaa", status, "GpuHot", "warning", "n1", 0, "rule", dt(start),
                     dt(end) if status == "resolved" else None, {"gpu_model": "H100"}, {}, "", ""])
# XidError on n2, one incident, resolved after 1200 s.
rows.append([dt(t0), "bbbbbbbbbbbbbbbb", "firing", "XidError", "critical", "n2", 1, "rule", dt(t0), None,
             {"gpu_model": "A100"}, {}, "", ""])
rows.append([dt(t0 + 1200), "bbbbbbbbbbbbbbbb", "resolved", "XidError", "critical", "n2", 1, "rule", dt(t0),
             dt(t0 + 1200), {"gpu_model": "A100"}, {}, "", ""])
store.insert("alerts", rows, alert_cols)
store.insert("alert_acks", [
    [dt(t0 + 60), "aaaaaaaaaaaaaaaa", "ack", "bob", "", dt(t0), "GpuHot", "n1", {}],
    [dt(t0 + 90), "aaaaaaaaaaaaaaaa", "ack", "carol", "", dt(t0), "GpuHot", "n1", {}],   # later ack: ignored
    [dt(t0 + 4200 + 120), "aaaaaaaaaaaaaaaa", "ack", "bob", "", dt(t0 + 4200), "GpuHot", "n1", {}],
], ["ts", "fingerprint", "action", "owner", "comment", "starts_at", "alertname", "node", "labels"])
store.insert("notification_attempts", [
    [dt(t0 + 1), "r", "r/webhook/0", "g", "firing", ["aaaaaaaaaaaaaaaa"], 1, 1, "delivered", 0, "", 3.0],
    [dt(t0 + 601), "r", "r/webhook/0", "g", "resolved", ["aaaaaaaaaaaaaaaa"], 1, 1, "delivered", 0, "", 3.0],
    [dt(t0 + 2), "r", "r/webhook/0", "h", "firing", ["bbbbbbbbbbbbbbbb"], 1, 1, "failed", 0, "x", 3.0],
], ["ts", "receiver", "integration", "group_key", "status", "fingerprints", "alert_count", "attempt", "outcome",
    "recoverable", "error", "duration_ms"])
store.insert("silences", [[dt(now), "s1", "created", 'node="n1"', dt(now), dt(now + 60), "alice", "x"]],
             ["ts", "silence_id", "action", "matchers", "starts_at", "ends_at", "created_by", "comment"])
out = {}
for name in sys.argv[2:]:
    sql = open(name).read()
    out[name.rsplit("/", 1)[-1]] = store.query(sql).as_dicts()
print(json.dumps(out, default=str))
'''


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    dsn = f"chdb://{tmp_path_factory.mktemp('ch') / 'data'}"
    files = sorted(str(p) for p in QUERIES.glob("*.sql"))
    proc = subprocess.run([sys.executable, "-c", SCRIPT, dsn, *files], capture_output=True, text=True,
                          cwd=ROOT, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_mtta_uses_the_first_ack_of_each_incident(results):
    (row,) = results["mtta.sql"]
    assert (row["alertname"], row["node"], row["gpu_model"]) == ("GpuHot", "n1", "H100")
    assert row["acked_incidents"] == 2 and row["mtta_s"] == pytest.approx(90.0)  # (60 + 120) / 2


def test_mttr_per_alert_node_and_model(results):
    by = {(r["alertname"], r["gpu_model"]): r for r in results["mttr.sql"]}
    assert by[("GpuHot", "H100")]["mttr_s"] == pytest.approx(450.0)  # (600 + 300) / 2
    assert by[("XidError", "A100")]["mttr_s"] == pytest.approx(1200.0)


def test_mtbf_is_the_gap_between_resolution_and_next_failure(results):
    (row,) = results["mtbf.sql"]  # XidError had only one incident
    assert row["alertname"] == "GpuHot" and row["incidents"] == 2
    assert row["mtbf_h"] == pytest.approx(1.0)  # resolved at t0+600, next at t0+4200


def test_noisiest_and_volume(results):
    top = results["noisiest_alerts.sql"][0]
    assert (top["alertname"], top["incidents"], top["notifications"]) == ("GpuHot", 2, 2)
    vol = results["alert_volume.sql"]
    assert sum(r["fired"] for r in vol) == 3 and sum(r["resolved"] for r in vol) == 3


def test_every_history_row_the_worker_writes_fits_its_table():
    from pipelines.notify.history import ACKS, NOTIFICATION_ATTEMPTS, SILENCES

    ddl = (ROOT / "schemas" / "clickhouse" / "003_notify.sql").read_text()
    for table in (NOTIFICATION_ATTEMPTS, SILENCES, ACKS):
        assert f"{{db}}.{table}\n" in ddl
        for col in HISTORY_TABLES[table]:
            assert f"\n    {col} " in ddl, (table, col)
    HistoryRecord(table=ACKS, row={"ts": 1.0})
    with pytest.raises(ValueError, match="unknown history table"):
        HistoryRecord(table="alerts_typo", row={})
