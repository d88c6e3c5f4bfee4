"""``gpuwatch backtest`` on a CSV: scores per timestamp out, the alert the fault deserves, clear errors."""

from __future__ import annotations

import csv
import json
import time

import orjson
import pytest

from agents.simulator import Fault, SimulatedCluster
from pipelines.cli import main


@pytest.fixture
def metrics_csv(tmp_path):
    sim = SimulatedCluster(nodes=1, gpus=4, seed=2, start_ts=time.time() - 1000, job_churn_ticks=10**6,
                           faults=[Fault.parse("stalled_gpu@node-0/2:300+60")])
    path = tmp_path / "metrics.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ts", "node", "gpu", "metric", "value", "uuid", "labels"])
        for _ in range(380):
            for b in sim.tick()[0]:
                for s in b["samples"]:
                    w.writerow([b["ts"], b["node"], s["gpu"], s["metric"], s["value"], s.get("uuid", ""),
                                json.dumps(s.get("labels", {}))])
    return path


def test_backtest_writes_scores_per_timestamp_and_the_alerts(metrics_csv, tmp_path, capsys):
    out, alerts = tmp_path / "scores.csv", tmp_path / "alerts.jsonl"
    assert main(["backtest", str(metrics_csv), "--out", str(out), "--alerts", str(alerts)]) == 0
    rows = list(csv.DictReader(open(out)))
    assert list(rows[0]) == ["ts", "node", "gpu", "detector", "subject", "score", "threshold", "anomalous"]
    assert len({r["ts"] for r in rows}) == 380
    events = [orjson.loads(line) for line in alerts.read_bytes().splitlines()]
    assert [(e["alertname"], e["labels"]["gpu"], e["status"]) for e in events][:1] == [("GpuStalled", "2", "firing")]
    assert "1 alerts fired" in capsys.readouterr().err


def test_backtest_can_run_one_detector(metrics_csv, tmp_path):
    out = tmp_path / "scores.csv"
    assert main(["backtest", str(metrics_csv), "--detector", "straggler", "--out", str(out)]) == 0
    assert {r["detector"] for r in csv.DictReader(open(out))} == {"straggler"}


def test_backtest_errors_are_one_sentence(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("time,node,value\n1,n,2\n")
    assert main(["backtest", str(bad)]) == 2
    assert "lacks column(s) gpu, metric, ts" in capsys.readouterr().err
    assert main(["backtest", str(bad), "--detector", "nope"]) == 2
    assert main(["backtest", str(tmp_path / "missing.csv")]) == 2


LOAD = """
import csv, json, sys
from datetime import datetime, timezone
from pipelines.store import Store
st = Store(sys.argv[1]); st.apply_schema()
rows = [(datetime.fromtimestamp(float(r["ts"]), tz=timezone.utc), r["node"], int(r["gpu"]), r["uuid"], r["metric"],
         float(r["value"]), "", json.loads(r["labels"]), 0, 0) for r in csv.DictReader(open(sys.argv[2]))]
st.insert("metrics_raw", rows, ["ts", "node", "gpu", "uuid", "metric", "value", "unit", "labels",
                                "src_partition", "src_offset"])
st.close()
"""


@pytest.mark.integration
def test_backtest_from_a_clickhouse_query_matches_the_csv(metrics_csv, tmp_path, chdb_dsn, gpuwatch_cmd,
                                                          subprocess_env):
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", LOAD, chdb_dsn, str(metrics_csv)], check=True, env=subprocess_env,
                   timeout=300)
    out = tmp_path / "from_ch.csv"
    r = subprocess.run([*gpuwatch_cmd, "backtest", "--clickhouse", chdb_dsn, "--out", str(out), "--from-clickhouse",
                        "SELECT ts, node, gpu, metric, value, labels FROM gpuwatch.metrics_raw"],
                       env=subprocess_env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "GpuStalled" in r.stderr
    ref = tmp_path / "from_csv.csv"
    assert main(["backtest", str(metrics_csv), "--out", str(ref)]) == 0
    key = lambda row: (row["ts"], row["gpu"], row["detector"], row["subject"])  # noqa: E731
    got = sorted(csv.DictReader(open(out)), key=key)
    want = sorted(csv.DictReader(open(ref)), key=key)
    assert len(got) == len(want) and [r["anomalous"] for r in got] == [r["anomalous"] for r in want]


def test_a_csv_that_is_not_utf8_is_one_clear_error(tmp_path, capsys):
    p = tmp_path / "series.csv"
    p.write_bytes(b"timestamp,value\n2024-01-01 00:00:00,1\n\xff\xfe,2\n")  # crashed with UnicodeDecodeError
    assert main(["backtest", str(p)]) == 2
    err = capsys.readouterr().err
    assert "series.csv is not UTF-8 text (byte 0xff at offset" in err and len(err.strip().splitlines()) == 1


def test_a_clickhouse_dsn_that_is_not_one_is_refused_like_gpuwatch_query_refuses_it(capsys):
    """`backtest --clickhouse notadsn` went to localhost:8123 and printed the HTTP driver's noise."""
    assert main(["backtest", "--from-clickhouse", "SELECT 1", "--clickhouse", "notadsn"]) == 2
    err = capsys.readouterr().err
    assert "must start with chdb://, http:// or https://" in err and len(err.strip().splitlines()) == 1, err


def test_a_value_that_is_not_finite_names_its_row(tmp_path, capsys):
    p = tmp_path / "series.csv"
    p.write_text("timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:00:05,nan\n")
    assert main(["backtest", str(p)]) == 2
    err = capsys.readouterr().err
    assert "row 3: value nan is not a finite number" in err and len(err.strip().splitlines()) == 1, err


OK_CSV = "ts,node,gpu,metric,value\n1796080000,n1,0,gpu_temp_c,50\n"


def test_a_failed_run_leaves_earlier_outputs_as_they_were(tmp_path, capsys):
    """--out was emptied before a later step failed (an unwritable --alerts, a bad row)."""
    src = tmp_path / "ok.csv"
    src.write_text(OK_CSV)
    out = tmp_path / "scores.csv"
    out.write_text("precious\n")
    assert main(["backtest", str(src), "--out", str(out), "--alerts", str(tmp_path / "no" / "a.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err and out.read_text() == "precious\n"
    bad = tmp_path / "bad.csv"
    bad.write_text(OK_CSV + "1796080001,n1,0,gpu_temp_c,50\n1796080002,n1,0,gpu_temp_c,x\n")
    assert main(["backtest", str(bad), "--out", str(out)]) == 2
    assert out.read_text() == "precious\n" and not list(tmp_path.glob("*.partial"))
    assert main(["backtest", str(src), "--out", str(out)]) == 0
    assert out.read_text().startswith("ts,node,gpu,detector")
    assert main(["backtest", str(src), "--out", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


@pytest.mark.parametrize("row, says", [
    ('1796080000,n1,0,gpu_temp_c,50,"[1,2]"', "not an object of names and values"),
    ('1796080000,n1,0,gpu_temp_c,50,"{""a"": {""b"": 1}}"', "not a string or a number"),
    ("1796080000,n1,-5,gpu_temp_c,50,", "gpu -5 is not from -1 to 1023"),
    ("1796080000,,0,gpu_temp_c,50,", "must not be empty"),
    ("1796080000,n1,0", "a short row"),
    ("yesterday,n1,0,gpu_temp_c,50,", "timestamp 'yesterday' is neither"),  # named no row
    ("1796080000,n1,x,gpu_temp_c,50,", "gpu 'x' is not a whole number"),
])
def test_rows_the_pipeline_would_refuse_are_refused_with_their_row(tmp_path, capsys, row, says):
    p = tmp_path / "rows.csv"
    p.write_text(f"ts,node,gpu,metric,value,labels\n{row}\n")
    assert main(["backtest", str(p)]) == 2
    err = capsys.readouterr().err
    assert "row 2:" in err and says in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("flag, value", [("--refractory", "-1"), ("--refractory", "0"),
                                         ("--verdict-score", "nan"), ("--verdict-score", "5")])
def test_verdict_options_out_of_range_are_refused(tmp_path, flag, value):
    p = tmp_path / "ok.csv"
    p.write_text(OK_CSV)
    with pytest.raises(SystemExit) as e:
        main(["backtest", str(p), flag, value])
    assert e.value.code == 2
