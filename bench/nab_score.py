"""Score ``gpuwatch backtest`` on labelled univariate series the way the Numenta Anomaly Benchmark scores.

Our own implementation of NAB's published scoring (Lavin & Ahmad 2015, "Evaluating
real-time anomaly detection algorithms"), standard profile: A_TP = 1, A_FP = 0.11,
A_FN = 1. For each labelled window, only the first detection counts, weighted by the
scaled sigmoid of its relative position (2 / (1 + e^(5y)) - 1, y = -1 at the window's
start, 0 at its end), divided by its value at the start so an earliest detection
scores A_TP. A detection outside every window costs A_FP times the sigmoid of its
distance past the last window (relative to that window's width; -1 before any window,
and -1 beyond three widths), so a late detection just after a window costs little.
A window without a detection costs A_FN. Detections in the probationary period (the
first min(15 % of rows, 750) rows) are ignored. Scores are normalised over the corpus
so that never alerting is 0 and a perfect detector 100.

The data are not in this repository: pass a directory of ``timestamp,value`` CSVs
(NAB's ``data/`` layout: ``DIR/<category>/<file>.csv``) and a labels JSON mapping
``<category>/<file>.csv`` to a list of ``[start, end]`` windows (NAB's
``combined_windows.json``).

    python bench/nab_score.py --data /tmp/nab/data --labels /tmp/nab/labels/combined_windows.json
    python bench/nab_score.py --nab ~/NAB        # a NAB checkout: DIR/data and DIR/labels/combined_windows.json
    NAB_DIR=~/NAB make bench                     # without a NAB checkout this script says so and skips

Reported: the default verdicts (the backtest's ``anomaly`` column) per series and in
total, false-positive points, and the continuous score (``anomaly_score``) at the
threshold that maximises the corpus score (NAB's threshold optimisation). Series are
split into a ``tune`` and a ``holdout`` half by a fixed hash of the file name, so a
change made while looking at one half can be checked on the other. Exits 1 when the
default verdicts score below 0 (worse than never alerting).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import io
import json
import math
import os
import sys
import tempfile
from datetime import datetime, timezone

import numpy as np

A_TP, A_FP, A_FN = 1.0, 0.11, 1.0


def scaled_sigmoid(y: float) -> float:
    """NAB's scaled sigmoid: +0.987 at y = -1 (window start), 0 at the window's end, -1 far past it."""
    if y > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def half_of(name: str) -> str:
    """A fixed split by file name: the same half on every machine and run."""
    return "tune" if hashlib.sha256(os.path.basename(name).encode()).digest()[0] % 2 == 0 else "holdout"


def _ts(s: str) -> float:
    return datetime.fromisoformat(s.strip()).replace(tzinfo=timezone.utc).timestamp()


def window_rows(ts: np.ndarray, windows: list) -> list[tuple[int, int]]:
    """Each window as (first row, last row) indices into the series."""
    out = []
    for start, end in windows:
        a, b = np.searchsorted(ts, _ts(start), "left"), np.searchsorted(ts, _ts(end), "right") - 1
        if b >= a:
            out.append((int(a), int(b)))
    return out


def score_series(detected: np.ndarray, wins: list[tuple[int, int]]) -> dict:
    """Raw NAB score of one series' detections (bool per row), with its TP/FP/FN counts."""
    n = len(detected)
    probation = int(min(math.floor(0.15 * n), 0.15 * 5000))
    max_tp = scaled_sigmoid(-1.0)
    in_win = np.full(n, -1)
    for k, (a, b) in enumerate(wins):
        in_win[a:b + 1] = k
    raw, tp, fp, fp_cost, hit = 0.0, 0, 0, 0.0, set()
    prev = None  # (right index, width) of the last window passed
    for i in np.flatnonzero(detected):
        if i < probation:
            continue
        k = in_win[i]
        if k >= 0:
            if k in hit:
                continue
            a, b = wins[k]
            width = b - a + 1
            raw += A_TP * scaled_sigmoid(-(b - i + 1) / width) / max_tp
            hit.add(k)
            tp += 1
            continue
        prev = None
        for a, b in wins:
            if b < i:
                prev = (b, b - a + 1)
        s = -1.0 if prev is None else scaled_sigmoid(abs(prev[0] - i) / max(prev[1] - 1, 1))
        raw += A_FP * s
        fp += 1
        fp_cost += -A_FP * s if s < 0 else 0.0
    fn = len(wins) - len(hit)
    raw -= A_FN * fn
    return {"raw": raw, "tp": tp, "fp": fp, "fn": fn, "windows": len(wins), "fp_cost": fp_cost}


def normalised(raw: float, n_windows: int) -> float:
    """100 * (raw - null) / (perfect - null): never alerting 0, perfect 100."""
    null, perfect = -A_FN * n_windows, A_TP * n_windows
    return 100.0 * (raw - null) / (perfect - null) if perfect > null else 0.0


def run_backtest(path: str, extra: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Timestamps, continuous scores and verdicts of ``gpuwatch backtest`` on one CSV."""
    from pipelines.cli import main

    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "v.csv")
        with contextlib.redirect_stderr(io.StringIO()):
            rc = main(["backtest", path, "--out", out, "--no-rules", *extra])
        if rc != 0:
            raise SystemExit(f"backtest failed on {path}: exit {rc}")
        rows = list(csv.DictReader(open(out)))
    ts = np.array([_ts(r["timestamp"]) for r in rows])
    return ts, np.array([float(r["anomaly_score"]) for r in rows]), np.array([int(r["anomaly"]) for r in rows])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nab", default=os.environ.get("NAB_DIR"),
                    help="a NAB checkout (default: $NAB_DIR): its data/ and labels/combined_windows.json")
    ap.add_argument("--data", help="directory of timestamp,value CSVs (searched recursively)")
    ap.add_argument("--labels", help="JSON: relative path -> [[start, end], ...]")
    ap.add_argument("--backtest-arg", action="append", default=[], help="extra argument for gpuwatch backtest")
    args = ap.parse_args(argv)
    if args.nab:
        args.data = args.data or os.path.join(args.nab, "data")
        args.labels = args.labels or os.path.join(args.nab, "labels", "combined_windows.json")
    if not (args.data and args.labels):
        # the data are not ours to ship: without them there is nothing to measure (make bench runs every script)
        print("nab_score: skipped, no NAB data (give --nab DIR, set NAB_DIR, or --data and --labels)")
        return 0

    labels = json.load(open(args.labels))
    files = sorted(os.path.relpath(os.path.join(r, f), args.data)
                   for r, _, fs in os.walk(args.data) for f in fs if f.endswith(".csv"))
    files = [f for f in files if f in labels]
    if not files:
        raise SystemExit("no labelled CSV under --data")
    results = []
    for rel in files:
        ts, scores, verdicts = run_backtest(os.path.join(args.data, rel), args.backtest_arg)
        wins = window_rows(ts, labels[rel])
        results.append({"file": rel, "half": half_of(rel), "wins": wins, "scores": scores,
                        **score_series(verdicts.astype(bool), wins)})

    print(f"{'series':58} {'half':8} {'win':>3} {'TP':>3} {'FP':>4} {'FN':>3} {'raw':>8} {'score':>7}")
    for r in results:
        print(f"{r['file']:58} {r['half']:8} {r['windows']:3d} {r['tp']:3d} {r['fp']:4d} {r['fn']:3d} "
              f"{r['raw']:8.2f} {normalised(r['raw'], r['windows']):7.1f}")

    def total(rs, key="raw"):
        return sum(r[key] for r in rs), sum(r["windows"] for r in rs)

    # continuous score: one threshold for the whole corpus, the one that maximises the total (NAB's optimiser)
    grid = np.unique(np.r_[np.linspace(0.0, 1.0, 101), np.quantile(np.concatenate([r["scores"] for r in results]),
                                                                    np.linspace(0.9, 1.0, 201))])
    best_t, best_raw = 1.0, -np.inf
    cont_by_t = {}
    for t in grid:
        raws = [score_series(r["scores"] >= t, r["wins"])["raw"] for r in results]
        cont_by_t[t] = raws
        if sum(raws) > best_raw:
            best_t, best_raw = t, sum(raws)
    cont = cont_by_t[best_t]

    print()
    print(f"{'subset':10} {'files':>5} {'windows':>7} {'FP pts':>7} {'FP cost':>8} {'verdicts':>9} "
          f"{'continuous@' + format(best_t, '.3f'):>18}")
    for name, sel in (("tune", "tune"), ("holdout", "holdout"), ("all", None)):
        idx = [i for i, r in enumerate(results) if sel is None or r["half"] == sel]
        rs = [results[i] for i in idx]
        if not rs:
            continue
        raw, nw = total(rs)
        c_raw = sum(cont[i] for i in idx)
        print(f"{name:10} {len(rs):5d} {nw:7d} {sum(r['fp'] for r in rs):7d} {sum(r['fp_cost'] for r in rs):8.2f} "
              f"{normalised(raw, nw):9.1f} {normalised(c_raw, nw):18.1f}")
    # the same optimiser run on the tune half only, applied to the held-out half (no peeking at its labels)
    tune_i = [i for i, r in enumerate(results) if r["half"] == "tune"]
    hold_i = [i for i, r in enumerate(results) if r["half"] == "holdout"]
    if tune_i and hold_i:
        t_tune = max(grid, key=lambda t: sum(cont_by_t[t][i] for i in tune_i))
        h_raw = sum(cont_by_t[t_tune][i] for i in hold_i)
        print(f"continuous, threshold {t_tune:.3f} picked on the tune half: held-out half scores "
              f"{normalised(h_raw, sum(results[i]['windows'] for i in hold_i)):.1f}")
    raw_all, nw_all = total(results)
    verdict_score = normalised(raw_all, nw_all)
    print(f"\ndefault verdicts: NAB standard score {verdict_score:.1f} (never alerting 0, perfect 100); "
          f"target > 0: {'met' if verdict_score > 0 else 'MISSED'}")
    return 0 if verdict_score > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
