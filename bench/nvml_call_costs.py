"""What each NVML call costs on this host, timed where the agent's collector makes it.

Wraps every ``nvmlDevice*`` function of ``pynvml`` with a timer (the calling thread's CPU time and the
wall time), runs the agent's own ``NvmlCollector`` for some scrapes at 1 Hz, and prints the scrape's
wall and CPU time and a table of calls, dearest first. It is how the per-call costs in
``agents.collectors.nvml_fake.H200_COSTS`` were measured, and how to check them on another driver or GPU
before trusting the cost-faithful fake:

    python bench/nvml_call_costs.py --scrapes 20               # the real NVML where it starts, else the fake
    python bench/nvml_call_costs.py --nvml fake --gpus 8       # the fake with H200_COSTS, for comparison

Figures are labelled with which NVML was timed. Exit status 2 when ``--nvml real`` cannot start.
"""

from __future__ import annotations

import argparse
import collections
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _timed(cost: dict, lock: threading.Lock, name: str, fn):
    def call(*a, **k):
        c0, w0 = time.thread_time(), time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            c1, w1 = time.thread_time(), time.perf_counter()
            with lock:
                e = cost[name]
                e[0] += 1
                e[1] += c1 - c0
                e[2] += w1 - w0
    return call


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scrapes", type=int, default=20, help="scrapes at 1 Hz (default 20)")
    ap.add_argument("--nvml", choices=("real", "fake"), default=None,
                    help="the real NVML or the cost-faithful fake (default: real if it starts here)")
    ap.add_argument("--gpus", type=int, default=8, help="fake GPUs (default 8)")
    args = ap.parse_args(argv)

    from agents.collectors.nvml import NvmlCollector, real_gpu_count

    if args.nvml is None:
        args.nvml = "real" if real_gpu_count() else "fake"
    if args.nvml == "fake":
        from agents.collectors.nvml_fake import H200_COSTS, FakeGpu, FakeNvml
        nv = FakeNvml([FakeGpu(i) for i in range(args.gpus)], costs=H200_COSTS)
    else:
        import pynvml as nv
    cost: dict[str, list] = collections.defaultdict(lambda: [0, 0.0, 0.0])  # calls, CPU s, wall s
    lock = threading.Lock()
    for name in dir(nv):
        if name.startswith("nvmlDevice") and callable(getattr(nv, name)):
            setattr(nv, name, _timed(cost, lock, name, getattr(nv, name)))
    col = NvmlCollector(nvml=nv)
    try:
        col.start()
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    cost.clear()  # discovery is a start-up cost, not a scrape's
    walls, cpus, counts = [], [], []
    for _ in range(args.scrapes):
        c0, w0 = time.process_time(), time.perf_counter()
        counts.append(len(col.collect(time.time())))
        walls.append((time.perf_counter() - w0) * 1e3)
        cpus.append((time.process_time() - c0) * 1e3)
        time.sleep(max(0.0, 1.0 - (time.perf_counter() - w0)))
    n = args.scrapes
    print(f"{'FAKE NVML with H200_COSTS (no GPU timed)' if args.nvml == 'fake' else 'REAL NVML'}: {len(col._gpus)} GPU(s), {n} scrapes at 1 Hz, "
          f"samples per scrape {counts}")
    print("scrape wall ms: " + " ".join(f"{w:.1f}" for w in walls))
    print("scrape CPU ms (process): " + " ".join(f"{c:.2f}" for c in cpus))
    print(f"{'call':46s} {'calls':>6s} {'CPU us/call':>12s} {'wall us/call':>13s} {'CPU ms/scrape':>14s}")
    for name, (k, c, w) in sorted(cost.items(), key=lambda kv: -kv[1][1]):
        print(f"{name:46s} {k:6d} {c / k * 1e6:12.1f} {w / k * 1e6:13.1f} {c / n * 1e3:14.3f}")
    print(f"mean CPU per scrape: {sum(cpus) / n:.2f} ms = {sum(cpus) / n / 10:.3f} % of a core at 1 Hz")
    col.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
