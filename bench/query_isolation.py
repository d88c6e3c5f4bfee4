"""Does a runaway user query hold up the writer? Insert latency while ``numbers(1e13)`` runs.

One process, one chDB path, as in the running pipeline. A writer inserts one
small batch every 50 ms through :class:`pipelines.store.Store` while a user
query that would run for hours (``SELECT count() FROM numbers(1e13)``) runs
alongside, two ways:

* ``shared``: the query on the writer's session and lock (how ``/query`` ran
  before the sandbox; given the same time limit here so that it ends at all);
* ``sandbox``: :class:`pipelines.query_sandbox.QuerySandbox`, a session of its own.

Printed last: inserts completed while the query ran and the longest gap between
two inserts, side by side. Target: with the sandbox the longest gap stays under
1 s and the query is cut off by its time limit. Exits non-zero when missed.

    python bench/query_isolation.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.query_sandbox import QueryLimits, QuerySandbox  # noqa: E402
from pipelines.store import Store, StoreError  # noqa: E402

RUNAWAY = "SELECT count() FROM numbers(1e13)"
TARGET_MAX_GAP_S = 1.0


def measure(store: Store, run_query) -> dict:
    """Insert every 50 ms while ``run_query`` runs in a thread; the writer's view of it."""
    outcome: dict = {}

    def query() -> None:
        t0 = time.monotonic()
        try:
            run_query()
            outcome["result"] = "finished"
        except StoreError as e:
            outcome["result"] = "cut off" if "TIMEOUT_EXCEEDED" in str(e) else f"error: {str(e)[:60]}"
        outcome["query_s"] = time.monotonic() - t0

    t = threading.Thread(target=query, daemon=True)
    t.start()
    time.sleep(0.2)
    n, gaps, last = 0, [], time.monotonic()
    while t.is_alive():
        store.insert("heartbeats", [[int(time.time() * 1000), "bench-node", "v", 8, {}]],
                     ["ts", "node", "agent_version", "gpu_count", "collectors"], dedup_token=f"bench-{time.time_ns()}")
        now = time.monotonic()
        gaps.append(now - last)
        last, n = now, n + 1
        time.sleep(0.05)
    t.join()
    return {"inserts": n, "max_gap_s": max(gaps) if gaps else float("inf"), **outcome}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="the query time limit (default 5)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dsn = f"chdb://{Path(tmp) / 'clickhouse'}"
        store = Store(dsn)
        store.apply_schema()
        limits = QueryLimits(timeout_s=args.seconds, max_rows_to_read=0)
        sandbox = QuerySandbox(dsn, limits=limits)

        def shared() -> None:  # the old way: the writer's client and lock, a per-query setting
            with store._lock:
                try:
                    store._client.query(RUNAWAY, settings={"max_execution_time": args.seconds})
                except Exception as e:
                    raise StoreError(str(e)) from None

        results = {"shared": measure(store, shared), "sandbox": measure(store, lambda: sandbox.run(RUNAWAY))}
        store.close()
    print(f"{'query path':<10} {'query':>9} {'query s':>8} {'inserts':>8} {'max insert gap s':>17}")
    for name, r in results.items():
        print(f"{name:<10} {r.get('result', '?'):>9} {r.get('query_s', 0):>8.1f} {r['inserts']:>8} "
              f"{r['max_gap_s']:>17.2f}")
    s = results["sandbox"]
    ratio = results["shared"]["max_gap_s"] / max(s["max_gap_s"], 1e-3)
    print(f"longest writer stall: shared / sandbox = {ratio:.0f}x; target sandbox < {TARGET_MAX_GAP_S:g} s")
    ok = s["max_gap_s"] < TARGET_MAX_GAP_S and s.get("result") == "cut off"
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
