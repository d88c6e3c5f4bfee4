"""Log path throughput: lines per second per core, from Kafka bytes to rows in ClickHouse.

What is timed, per batch, exactly as the pipeline does it: decode the
message (:func:`pipelines.logs.salvage.salvage_log_batch`), process it
(rate limit, drain3 mining, critical patterns, anomalies), convert the rows
(:data:`pipelines.sinks.tables.LOGS`) and insert them into chDB with
:meth:`pipelines.store.Store.insert`, in batches as the sink would. Only
building the input messages is left out.

"Per core" is lines divided by the CPU time of the whole process (Python plus
chDB's own threads), so a result does not flatter itself by using more cores.

    .venv/bin/python bench/log_throughput.py [--lines 400000] [--nodes 50] [--gc-threshold 50000]

Python's cyclic garbage collector costs this path a quarter of its time (it
rescans the sink's buffered rows); ``--gc-threshold`` measures the pipeline
with ``gc.freeze()`` and a larger first-generation threshold, as a worker
process can set at start-up.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.logs.processor import LOG_COLUMNS, TEMPLATE_COLUMNS, TEMPLATE_TABLE, LogProcessor  # noqa: E402
from pipelines.logs.salvage import salvage_log_batch  # noqa: E402
from pipelines.sinks.tables import LOGS, TableSpec  # noqa: E402
from pipelines.store import Store  # noqa: E402

TEMPLATES_SPEC = TableSpec(TEMPLATE_TABLE, TEMPLATE_COLUMNS, millis=("first_seen", "last_seen"))


def make_line(rng: random.Random, i: int) -> tuple[str, str]:
    """A (level, message) pair drawn from a training job's typical log mix."""
    k = rng.random()
    if k < 0.40:
        return "info", (f"[rank{rng.randrange(8)}] step {i} | loss {rng.uniform(1, 3):.4f} | lr {3e-4:.2e} | "
                        f"grad_norm {rng.uniform(0.5, 2):.3f} | tokens/s {rng.randrange(90000, 130000)}")
    if k < 0.55:
        return "info", (f"NCCL INFO Channel {rng.randrange(32):02d}/0 : {rng.randrange(8)}[{rng.randrange(8)}] -> "
                        f"{rng.randrange(8)}[{rng.randrange(8)}] via P2P/IPC/read")
    if k < 0.65:
        return "info", (f"Saving checkpoint to /mnt/ckpt/run-{rng.randrange(100)}/step_{i}.pt "
                        f"({rng.uniform(1, 90):.1f} GiB) took {rng.uniform(1, 30):.2f}s")
    if k < 0.75:
        return "", (f"dataloader worker {rng.randrange(16)} prefetched shard {rng.randrange(10000)} from "
                    f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}:{rng.randrange(1024, 65535)}")
    if k < 0.83:
        return "warning", (f"UserWarning: torch.utils.checkpoint: the use_reentrant parameter should be passed "
                           f"explicitly (rank {rng.randrange(64)})")
    if k < 0.90:
        return "debug", (f"allocator: block 0x{rng.getrandbits(40):010x} size {rng.randrange(1, 1 << 30)} "
                         f"stream 0x{rng.getrandbits(32):08x} freed")
    if k < 0.96:
        return "info", (f"request {rng.getrandbits(128):032x} served by gpu-{rng.randrange(8)} on "
                        f"0000:{rng.randrange(256):02x}:00.0 in {rng.uniform(0, 50):.2f} ms")
    if k < 0.999:
        return "error", (f"RuntimeError: DataLoader worker (pid {rng.randrange(1000, 99999)}) exited unexpectedly "
                         f"with exit code {rng.randrange(1, 3)}")
    return "error", (f"[rank{rng.randrange(8)}]:[E ProcessGroupNCCL.cpp:{rng.randrange(500, 700)}] Watchdog caught "
                     f"collective operation timeout: WorkNCCL(SeqNum={i}, OpType=ALLREDUCE, Timeout(ms)=600000) "
                     f"ran for {rng.randrange(600000, 700000)} milliseconds before timing out.")


def make_messages(lines: int, nodes: int, batch: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    now = time.time() - 600
    out, i = [], 0
    while i < lines:
        node = f"gpu-node-{rng.randrange(nodes):03d}"
        job = f"job-{node[-3:]}"
        records = []
        for _ in range(min(batch, lines - i)):
            level, msg = make_line(rng, i)
            records.append({"ts": now + i * 600 / lines, "message": msg, "level": level,
                            "source": "/var/log/train/stdout.log", "labels": {"job": job}})
            i += 1
        out.append(orjson.dumps({"v": 1, "kind": "logs", "node": node, "records": records}))
    return out


def run(lines: int, nodes: int, batch: int, flush_rows: int) -> dict:
    messages = make_messages(lines, nodes, batch)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"chdb://{tmp}/clickhouse")
        store.apply_schema()
        processor = LogProcessor(Path(tmp) / "state", lines_per_s=1e9, burst_lines=1e9)
        to_log_row, to_template_row = LOGS.converter(), TEMPLATES_SPEC.converter()
        t = {"decode": 0.0, "process": 0.0, "convert": 0.0, "insert": 0.0}
        log_buf, tpl_buf = [], []
        clock = time.perf_counter
        wall0, cpu0 = clock(), time.process_time()
        for offset, raw in enumerate(messages):
            a = clock()
            batch_ = salvage_log_batch(raw).batch
            b = clock()
            out = processor.process(batch_, 0, offset)
            c = clock()
            log_buf.extend(map(to_log_row, out.log_rows))
            tpl_buf.extend(map(to_template_row, out.template_rows))
            d = clock()
            t["decode"] += b - a
            t["process"] += c - b
            t["convert"] += d - c
            if len(log_buf) >= flush_rows or offset == len(messages) - 1:
                store.insert("logs", log_buf, LOG_COLUMNS)
                store.insert(TEMPLATE_TABLE, tpl_buf, TEMPLATE_COLUMNS)
                log_buf, tpl_buf = [], []
                t["insert"] += clock() - d
        wall, cpu = clock() - wall0, time.process_time() - cpu0
        stored = store.query("SELECT count() FROM gpuwatch.logs").rows[0][0]
        templates = store.query("SELECT count() FROM gpuwatch.log_templates_current").rows[0][0]
        processor.close()
        store.close()
    return {"lines": lines, "stored": stored, "templates": templates, "wall_s": wall, "cpu_s": cpu, **t,
            "stats": processor.stats()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=400_000)
    ap.add_argument("--nodes", type=int, default=50)
    ap.add_argument("--batch", type=int, default=1000, help="records per Kafka message")
    ap.add_argument("--flush-rows", type=int, default=50_000, help="rows per ClickHouse insert")
    ap.add_argument("--target", type=float, default=50_000.0)
    ap.add_argument("--gc-threshold", type=int, default=0, metavar="N",
                    help="gc.freeze() and gc.set_threshold(N, 20, 20) first (default: CPython's GC settings)")
    args = ap.parse_args()
    if args.gc_threshold:
        gc.collect()
        gc.freeze()
        gc.set_threshold(args.gc_threshold, 20, 20)
    r = run(args.lines, args.nodes, args.batch, args.flush_rows)
    n = r["lines"]
    print(f"stats: {r['stats']}")
    print(f"time per line (us): decode {r['decode'] / n * 1e6:.2f}, process (mine+patterns+anomalies) "
          f"{r['process'] / n * 1e6:.2f}, row convert {r['convert'] / n * 1e6:.2f}, "
          f"ClickHouse insert {r['insert'] / n * 1e6:.2f}")
    per_core = n / r["cpu_s"]
    gc_mode = f"gc.freeze + threshold {args.gc_threshold}" if args.gc_threshold else "default GC"
    print(f"lines: {n:,} from {args.nodes} nodes, stored {r['stored']:,}, templates {r['templates']}, {gc_mode}")
    print(f"wall: {r['wall_s']:.2f}s = {n / r['wall_s']:,.0f} lines/s (one process, one Python thread)")
    print(f"cpu:  {r['cpu_s']:.2f}s = {per_core:,.0f} lines/s per core "
          f"(target {args.target:,.0f}: {'PASS' if per_core >= args.target else 'BELOW TARGET'})")
    return 0 if r["stored"] == n else 1


if __name__ == "__main__":
    sys.exit(main())
