"""bench/nab_score.py scores backtest verdicts the way NAB's standard profile does (our own implementation):
earliest detection in a window is worth 1, a false positive 0.11, a missed window 1, never alerting is 0."""

from __future__ import annotations

import csv
import importlib.util
import json
import pathlib
from datetime import datetime, timedelta

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("nab_score", ROOT / "bench" / "nab_score.py")
nab = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nab)


def _det(n, *rows):
    d = np.zeros(n, bool)
    d[list(rows)] = True
    return d


def test_never_alerting_scores_zero_and_an_earliest_detection_scores_one():
    wins = [(500, 599)]
    assert nab.score_series(_det(1000), wins)["raw"] == -1.0
    assert nab.normalised(-1.0, 1) == 0.0
    first = nab.score_series(_det(1000, 500), wins)
    assert first["raw"] == pytest.approx(1.0) and nab.normalised(first["raw"], 1) == pytest.approx(100.0)
    late = nab.score_series(_det(1000, 599), wins)["raw"]
    assert 0 < late < first["raw"]  # a late detection is worth less (scaled sigmoid)
    assert nab.score_series(_det(1000, 500, 510, 520), wins)["raw"] == pytest.approx(1.0)  # one per window


def test_false_positives_cost_the_standard_weight_and_probation_is_ignored():
    wins = [(500, 599)]
    fp = nab.score_series(_det(1000, 300), wins)  # before any window: full cost
    assert fp["fp"] == 1 and fp["raw"] == pytest.approx(-1.0 - 0.11)
    assert nab.score_series(_det(1000, 100), wins)["raw"] == -1.0  # row 100 is in the probationary 15 %
    just_after = nab.score_series(_det(1000, 605), wins)["raw"]  # just past a window: costs little
    assert -1.11 < just_after < -1.0


def _write(path, values, start=datetime(2020, 1, 1)):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "value"])
        for i, v in enumerate(values):
            w.writerow([(start + timedelta(minutes=5 * i)).strftime("%Y-%m-%d %H:%M:%S"), f"{v:.4f}"])


def _window(i, j, start=datetime(2020, 1, 1)):
    return [(start + timedelta(minutes=5 * k)).strftime("%Y-%m-%d %H:%M:%S.000000") for k in (i, j)]


def test_the_command_scores_a_directory_and_fails_below_never_alerting(tmp_path, capsys):
    rng = np.random.default_rng(7)
    spike = 50 + rng.normal(0, 1, 1500)
    spike[1000:1010] = 120.0  # a clear anomaly inside its labelled window
    _write(tmp_path / "data" / "cat" / "spike.csv", spike)
    _write(tmp_path / "data" / "cat" / "quiet.csv", 50 + rng.normal(0, 1, 1500))
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"cat/spike.csv": [_window(990, 1060)], "cat/quiet.csv": []}))
    assert nab.main(["--data", str(tmp_path / "data"), "--labels", str(labels)]) == 0
    out = capsys.readouterr().out
    assert "cat/spike.csv" in out and "target > 0: met" in out

    # a window the detector cannot see: the verdicts do no better than never alerting, and the command says so
    labels.write_text(json.dumps({"cat/spike.csv": [_window(990, 1060)], "cat/quiet.csv": [_window(1200, 1260)]}))
    _write(tmp_path / "data" / "cat" / "spike.csv", 50 + rng.normal(0, 1, 1500))
    assert nab.main(["--data", str(tmp_path / "data"), "--labels", str(labels)]) == 1
    assert "MISSED" in capsys.readouterr().out
