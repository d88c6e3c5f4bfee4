"""``gpuwatch backtest`` on any series: plain timestamp,value CSVs, unknown metrics, time zones, threshold rules,
and verdicts that hold on real-world shapes (constant, daily, level shift) instead of flooding them."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta, timezone

import numpy as np
import orjson

from pipelines.cli import main
from pipelines.cli.backtest import _parse_ts
from pipelines.detect import GpuMultivariate, RobustZScore

START = datetime(2024, 3, 1, tzinfo=timezone.utc)


def _series_csv(path, values, step_s=300, fmt="%Y-%m-%d %H:%M:%S"):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "value"])
        for i, v in enumerate(values):
            w.writerow([(START + timedelta(seconds=i * step_s)).strftime(fmt), f"{v:.4f}"])
    return path


def _backtest(path, tmp_path, *extra):
    out = tmp_path / "verdicts.csv"
    assert main(["backtest", str(path), "--out", str(out), *extra]) == 0
    return list(csv.DictReader(open(out)))


def _daily(days=7, noise=1.0, seed=1):
    rng = np.random.default_rng(seed)
    hours = (np.arange(days * 288) * 300 / 3600.0) % 24
    return 10 + 40 * ((hours >= 8) & (hours < 17)) + rng.normal(0, noise, len(hours))  # high 37.5 % of the day


# -- the plain series format ------------------------------------------------------------------------
def test_every_row_of_a_timestamp_value_series_gets_a_score_and_a_verdict(tmp_path):
    rng = np.random.default_rng(3)
    values = 50 + rng.normal(0, 2, 3000)
    values[2500] = 150.0  # one spike
    rows = _backtest(_series_csv(tmp_path / "s.csv", values), tmp_path)
    assert len(rows) == 3000 and list(rows[0]) == ["timestamp", "value", "anomaly_score", "anomaly"]
    scores = [float(r["anomaly_score"]) for r in rows]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert {r["anomaly"] for r in rows} <= {"0", "1"}
    assert rows[2500]["anomaly"] == "1" and sum(int(r["anomaly"]) for r in rows) == 1
    assert scores[2500] > 0.5 > max(scores[2000:2500])


def test_verdict_score_also_gives_verdicts_below_the_detector_threshold_and_not_on_a_constant(tmp_path):
    rng = np.random.default_rng(3)
    values = 50 + rng.normal(0, 2, 3000)
    values[2500] = 150.0
    path = _series_csv(tmp_path / "s.csv", values)
    scores = [float(r["anomaly_score"]) for r in _backtest(path, tmp_path)]
    u = max(scores[2000:2500])  # below 0.5: no verdict by default
    rows = _backtest(path, tmp_path, "--verdict-score", f"{u - 1e-6}")
    hits = [i for i, r in enumerate(rows) if r["anomaly"] == "1"]
    assert len(hits) > 1 and all(float(rows[i]["anomaly_score"]) >= u - 1e-6 for i in hits)
    flat = _backtest(_series_csv(tmp_path / "flat.csv", [42.0] * 3000), tmp_path, "--verdict-score", "0.3")
    assert sum(int(r["anomaly"]) for r in flat) == 0


def test_a_constant_series_is_never_flagged(tmp_path):
    rows = _backtest(_series_csv(tmp_path / "flat.csv", [42.0] * 3000), tmp_path)
    assert sum(int(r["anomaly"]) for r in rows) == 0 and max(float(r["anomaly_score"]) for r in rows) == 0.0


def test_the_multivariate_tier_does_not_flag_a_constant_vector():
    d = GpuMultivariate(window_size=50, warmup=100, seed=1)
    flagged = [d.observe({"util": 0.0, "power": 60.0})[1] for _ in range(600)]
    assert not any(flagged)


def test_a_daily_pattern_is_learned_not_flagged_every_high_phase(tmp_path):
    rows = _backtest(_series_csv(tmp_path / "daily.csv", _daily()), tmp_path)
    later = rows[2 * 288:]  # from the third day on, the high phase is normal
    assert sum(int(r["anomaly"]) for r in later) == 0
    assert sum(float(r["anomaly_score"]) >= 0.5 for r in later) < 0.01 * len(later)


def test_zscore_seasonal_bins_learn_the_high_phase_even_though_it_was_flagged_the_first_day():
    d = RobustZScore(warmup=60, threshold_z=8, season_s=86400, season_bins=24, alpha=0.02)  # adapt_after 300
    values = _daily(days=6, noise=0.5)
    flagged = []
    for i, v in enumerate(values):
        t = START.timestamp() + 300 * i
        flagged.append(d.score_one({"x": v}, t) >= d.threshold)
        d.learn_one({"x": v}, t)
    assert sum(flagged[3 * 288:]) < 0.01 * len(values[3 * 288:]), sum(flagged[3 * 288:])


def test_a_level_shift_is_one_event_not_hundreds(tmp_path):
    rng = np.random.default_rng(5)
    values = np.r_[10 + rng.normal(0, 1, 2000), 60 + rng.normal(0, 1, 2000)]  # a job starts and stays
    rows = _backtest(_series_csv(tmp_path / "shift.csv", values), tmp_path)
    after = rows[2000:]
    assert sum(float(r["anomaly_score"]) >= 0.5 for r in after) < 40
    assert after[0]["anomaly"] == "1" and sum(int(r["anomaly"]) for r in after) == 1


# -- time zones, unknown metrics, rules --------------------------------------------------------------
def test_a_negative_utc_offset_is_honoured():
    assert _parse_ts("2024-01-01T10:00:00-05:00") == datetime(2024, 1, 1, 15, tzinfo=timezone.utc).timestamp()
    assert _parse_ts("2024-01-01 10:00:00+02:00") == datetime(2024, 1, 1, 8, tzinfo=timezone.utc).timestamp()
    assert _parse_ts("2024-01-01 10:00:00") == datetime(2024, 1, 1, 10, tzinfo=timezone.utc).timestamp()


def test_timestamps_with_offsets_are_ordered_by_the_instant_they_name(tmp_path):
    path = tmp_path / "tz.csv"
    path.write_text("timestamp,value\n2024-01-01T10:00:00-05:00,1\n2024-01-01T14:30:00+00:00,2\n")
    rows = _backtest(path, tmp_path)
    assert [r["value"] for r in rows] == ["2", "1"]  # 14:30Z comes before 15:00Z


def _samples_csv(path, metric, values, gpu=0):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ts", "node", "gpu", "metric", "value"])
        for i, v in enumerate(values):
            w.writerow([1_700_000_000 + i, "n1", gpu, metric, v])
    return path


def test_an_unknown_metric_is_scored_with_a_warning_not_skipped(tmp_path, capsys):
    rng = np.random.default_rng(4)
    values = list(100 + rng.normal(0, 3, 600))
    values[500] = 400.0
    path = _samples_csv(tmp_path / "app.csv", "queue_depth", values, gpu=-1)
    out, per_row = tmp_path / "scores.csv", tmp_path / "rows.csv"
    assert main(["backtest", str(path), "--out", str(out), "--rows", str(per_row)]) == 0
    assert "queue_depth" in {r["subject"] for r in csv.DictReader(open(out))}
    rows = list(csv.DictReader(open(per_row)))
    assert len(rows) == 600 and rows[500]["anomaly"] == "1" and float(rows[500]["anomaly_score"]) > 0.5
    err = capsys.readouterr().err
    assert "warning" in err and "queue_depth" in err


def test_threshold_rules_run_in_a_backtest(tmp_path):
    path = _samples_csv(tmp_path / "hot.csv", "gpu_temp_c", [60.0] * 100 + [95.0] * 60)
    alerts = tmp_path / "alerts.jsonl"
    assert main(["backtest", str(path), "--out", str(tmp_path / "s.csv"), "--alerts", str(alerts)]) == 0
    names = {orjson.loads(line)["alertname"] for line in alerts.read_bytes().splitlines()}
    assert "GpuTemperatureHigh" in names
