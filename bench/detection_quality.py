"""Detection quality on a labelled dataset from the simulator: precision, recall, F1, delay, false alerts.

Two kinds of shard, run in parallel (one process per core):

- *faulted*: nodes of 8 GPUs with every fault type injected at known ticks
  (one fault at a time per node, spaced so incidents resolve in between), jobs
  starting and stopping, and a diurnal load curve;
- *fault-free*: the same churn and diurnal load, no faults: every alert is false.

Detection runs exactly as the pipeline runs it (:class:`pipelines.detect.replay.Backtest`:
NodeDetectors + IncidentBook per node, JobPeers per job, NodeAbsence on a timer).

Scoring. A firing alert *matches* a fault if it is on the fault's node (and GPU,
when the alert names one) and starts between the onset and the fault's end plus
``GRACE_S``. A fault is *detected* when an alert of the family that names it
(``FAMILY``) matches; its delay is that alert's event time minus the onset. An
alert matching no fault is false; per fault type, precision counts the false
alerts of that type's family. Faults that could not show (straggler, stall or
divergence while the node's job was not running) are reported and left out.
False alerts per 1,000 GPU-hours count warning/critical alerts on the fault-free
shards; ``info`` alerts (loss plateau) are reported apart.

    .venv/bin/python bench/detection_quality.py            # ~3-4 minutes on 2 cores
    .venv/bin/python bench/detection_quality.py --scale 3  # 3x the GPU-hours
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from dataclasses import dataclass

from agents.simulator import FAULT_KINDS, Fault, SimulatedCluster

FAMILY = {
    "GpuHotterThanPeers": "thermal_runaway", "GpuEccErrorBurst": "ecc_storm", "GpuStoppedReporting": "xid79",
    "GpuStraggler": "straggler", "GpuMemoryExhaustionForecast": "memory_leak",
    "GpuNvlinkErrors": "nvlink_degradation", "GpuStalled": "stalled_gpu", "JobTrainingDiverging": "loss_divergence",
}
NEEDS_RUNNING_JOB = {"straggler", "stalled_gpu", "loss_divergence"}
GPUS = 8
WARMUP_TICKS = 700
SLOT_TICKS = 700          # one fault per node per slot
FAULT_TICKS = 150
GRACE_S = 180.0
JOB_CHURN_TICKS = 1800    # a job stops/starts every ~30 min per node
DAY_TICKS = 3 * 3600      # a compressed day, so diurnal swings happen within the run


@dataclass
class Shard:
    seed: int
    nodes: int
    ticks: int
    faulted: bool


def _schedule(shard: Shard) -> list[Fault]:
    """Every fault type, over nodes and slots, on a different GPU each time, one at a time per node."""
    faults = []
    slots = range(WARMUP_TICKS, shard.ticks - FAULT_TICKS - int(GRACE_S), SLOT_TICKS)
    dead: set[tuple[str, int]] = set()
    for s_i, start in enumerate(slots):
        for n in range(shard.nodes):
            # each node walks through the kinds (a diverged job stays diverged in the simulator,
            # so a node must not get a second loss_divergence in its run)
            kind = FAULT_KINDS[(shard.seed + 3 * n + s_i) % len(FAULT_KINDS)]
            node = f"node-{n}"
            gpu = (n + 3 * s_i) % GPUS
            while (node, gpu) in dead:
                gpu = (gpu + 1) % GPUS
            if kind == "xid79":
                dead.add((node, gpu))
            jitter = (n * 37 + s_i * 11) % 120
            faults.append(Fault(kind, node, gpu, start + jitter, None if kind == "xid79" else FAULT_TICKS))
    return faults


def run_shard(shard: Shard) -> dict:
    from pipelines.detect.replay import Backtest, batch_from_dict

    faults = _schedule(shard) if shard.faulted else []
    start_ts = time.time() - shard.ticks - 60
    sim = SimulatedCluster(nodes=shard.nodes, gpus=GPUS, seed=shard.seed, start_ts=start_ts, faults=faults,
                           job_churn_ticks=JOB_CHURN_TICKS, day_ticks=DAY_TICKS)
    bt = Backtest()
    running: dict[str, set[int]] = {f"node-{n}": set() for n in range(shard.nodes)}
    alerts, gpu_ticks, job_starts = [], 0, 0
    was_running: dict[str, bool] = {}
    t0 = time.perf_counter()
    for tick in range(shard.ticks):
        for b in sim.tick()[0]:
            has_job = any(s["gpu"] < 0 for s in b["samples"])
            if has_job:
                running[b["node"]].add(tick)
            if has_job and was_running.get(b["node"]) is False:
                job_starts += 1
            was_running[b["node"]] = has_job
            gpu_ticks += len({s["gpu"] for s in b["samples"] if s["gpu"] >= 0})
            _, events = bt.observe(batch_from_dict(b))
            alerts += [(e.alertname, e.severity, dict(e.labels), e.starts_at, e.event_ts)
                       for e in events if e.status == "firing"]
    return {"shard": shard, "faults": faults, "alerts": alerts, "start_ts": start_ts, "gpu_hours": gpu_ticks / 3600,
            "running": running, "job_starts": job_starts, "seconds": time.perf_counter() - t0}


def _score(results: list[dict]) -> dict:
    per_kind = {k: {"faults": 0, "ineffective": 0, "detected": 0, "fp": 0, "delays": [], "collateral": 0}
                for k in FAULT_KINDS}
    false_free, info_free, false_faulted, other_false = [], [], [], []
    gpu_hours_free = sum(r["gpu_hours"] for r in results if not r["shard"].faulted)
    gpu_hours_faulted = sum(r["gpu_hours"] for r in results if r["shard"].faulted)
    for r in results:
        t0 = r["start_ts"]
        windows = []
        for f in r["faults"]:
            onset = t0 + f.start
            end = t0 + (f.start + f.duration if f.duration else r["shard"].ticks) + GRACE_S
            shows = f.kind not in NEEDS_RUNNING_JOB or all(
                t in r["running"][f.node] for t in range(f.start, f.start + 30))
            windows.append((f, onset, end, shows))
        matched_any = set()
        for f, onset, end, shows in windows:
            st = per_kind[f.kind]
            st["faults"] += 1
            hits = [a for a in r["alerts"] if a[2]["node"] == f.node and a[2].get("gpu", str(f.gpu)) == str(f.gpu)
                    and onset - 1 <= a[3] <= end]
            matched_any.update(id(a) for a in hits)
            if not shows:
                st["ineffective"] += 1
                continue
            named = [a for a in hits if FAMILY.get(a[0]) == f.kind]
            st["collateral"] += len(hits) - len(named[:1])
            if named:
                st["detected"] += 1
                st["delays"].append(min(a[4] for a in named) - onset)
        for a in r["alerts"]:
            if id(a) in matched_any:
                continue
            if a[1] == "info":
                if not r["shard"].faulted:
                    info_free.append(a)
                continue
            (false_free if not r["shard"].faulted else false_faulted).append(a)
            kind = FAMILY.get(a[0])
            if kind:
                per_kind[kind]["fp"] += 1
            else:
                other_false.append(a)
    return {"per_kind": per_kind, "false_free": false_free, "info_free": info_free, "false_faulted": false_faulted,
            "other_false": other_false, "gpu_hours_free": gpu_hours_free, "gpu_hours_faulted": gpu_hours_faulted}


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] if xs else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the dataset size")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    ticks = int(5 * 3600 * min(args.scale, 1.0)) if args.scale < 1 else 5 * 3600
    ticks = max(ticks, 4000)
    n_shards = max(1, round(2 * args.scale))
    shards = [Shard(seed=100 + i, nodes=4, ticks=ticks // 4 + WARMUP_TICKS, faulted=True) for i in range(n_shards)]
    shards += [Shard(seed=200 + i, nodes=4, ticks=ticks, faulted=False) for i in range(n_shards)]
    t0 = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(args.workers) as pool:
        results = pool.map(run_shard, shards, chunksize=1)
    wall = time.perf_counter() - t0
    sc = _score(results)

    print(f"dataset: {sum(len(r['faults']) for r in results)} faults on {sum(s.nodes for s in shards if s.faulted)} "
          f"faulted nodes, {sc['gpu_hours_faulted']:.0f} GPU-hours; fault-free {sc['gpu_hours_free']:.0f} GPU-hours "
          f"({sum(r['job_starts'] for r in results)} job starts, diurnal period {DAY_TICKS / 3600:.0f} h); "
          f"{wall:.0f} s wall on {args.workers} workers")
    for a in sc["false_free"] + sc["false_faulted"]:
        print(f"  false alert: {a[0]} {a[2]} ({a[1]})")
    print()
    print(f"{'fault type':20} {'faults':>6} {'shown':>5} {'det':>4} {'FP':>3} {'prec':>5} {'recall':>6} {'F1':>5} "
          f"{'delay p50':>9} {'p95':>5} {'extra':>5}")
    f1s, delays = [], []
    for kind, st in sc["per_kind"].items():
        shown = st["faults"] - st["ineffective"]
        tp, fp = st["detected"], st["fp"]
        p = tp / (tp + fp) if tp + fp else float("nan")
        r = tp / shown if shown else float("nan")
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        f1s.append(f1)
        delays += st["delays"]
        print(f"{kind:20} {st['faults']:6d} {shown:5d} {tp:4d} {fp:3d} {p:5.2f} {r:6.2f} {f1:5.2f} "
              f"{_pct(st['delays'], 0.5):8.0f}s {_pct(st['delays'], 0.95):4.0f}s {st['collateral']:5d}")
    n_false = len(sc["false_free"])
    rate = 1000 * n_false / sc["gpu_hours_free"]
    bound = 1000 * max(n_false, 3.0) / sc["gpu_hours_free"]
    print()
    print(f"min F1 over fault types            {min(f1s):.2f}   (target >= 0.9)")
    print(f"detection delay median / p95      {statistics.median(delays):.0f} s / {_pct(delays, 0.95):.0f} s"
          f"   (target median <= 10 s)")
    print(f"false alerts, fault-free data     {n_false} in {sc['gpu_hours_free']:.0f} GPU-hours = {rate:.2f} per "
          f"1,000 GPU-hours (95% upper bound ~{bound:.1f}; target <= 1)")
    print(f"false alerts, faulted data        {len(sc['false_faulted'])} outside fault windows "
          f"({sc['gpu_hours_faulted']:.0f} GPU-hours)")
    print(f"info alerts (loss plateau), fault-free: {len(sc['info_free'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
