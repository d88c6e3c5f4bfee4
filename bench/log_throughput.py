"""Log path throughput: lines per second per core, from Kafka bytes to rows in ClickHouse.

What is timed, per batch, exactly as the pipeline does it: decode the
message (:func:`pipelines.logs.salvage.salvage_log_batch`), process it
(rate limit, drain3 mining, critical patterns, anomalies), convert the rows
(:data:`pipelines.sinks.tables.LOGS`) and insert them into chDB with
:meth:`pipelines.store.Store.insert`, in batches as the sink would. Only
building the input messages is left out.

The lines are the labelled corpus's (``bench/data``: 26 formats, GPU-cluster
ones included, every event of ``corpus_events.py``) drawn afresh with new
values (hosts, ids, sizes, users), raw, with their headers, so the miner meets
realistic distinct lines, not a few repeated shapes.

"Per core" is lines divided by the CPU time of the whole process (Python plus
chDB's own threads), so a result does not flatter itself by using more cores.

    .venv/bin/python bench/log_throughput.py [--lines 200000] [--nodes 50] [--default-gc]

clickhouse-connect imports pandas on a process's first insert, whatever is
inserted: about half a CPU-second, once per worker, which would be 2-3 us a
line of a 200,000-line run. It is done before the clock starts
(:func:`warm_driver`) and its cost printed apart; pandas' objects then stay in
the heap, as in a worker, for the garbage collector to scan.

Python's cyclic garbage collector, left at CPython's defaults, costs this path
a quarter of its time (it rescans the sink's buffered rows and every start-up
object); the pipeline worker therefore freezes its start-up objects and raises
the first-generation threshold (:func:`pipelines.worker_gc.tune_gc_for_streaming`,
called where ``gpuwatch pipeline`` starts its worker). The benchmark does the
same by default; ``--default-gc`` measures CPython's defaults instead.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent / "data"))

import make_corpus  # noqa: E402  (bench/data: the corpus's event tables and value generators)
from corpus_events import EVENTS  # noqa: E402

from pipelines.logs.processor import LOG_COLUMNS, TEMPLATE_COLUMNS, TEMPLATE_TABLE, LogProcessor  # noqa: E402
from pipelines.logs.salvage import salvage_log_batch  # noqa: E402
from pipelines.sinks.tables import LOGS, TableSpec  # noqa: E402
from pipelines.store import Store  # noqa: E402
from pipelines.worker_gc import YOUNG_THRESHOLD, tune_gc_for_streaming  # noqa: E402

TEMPLATES_SPEC = TableSpec(TEMPLATE_TABLE, TEMPLATE_COLUMNS, millis=("first_seen", "last_seen"))


def corpus_lines(lines: int, seed: int = 7) -> list[tuple[str, str]]:
    """``lines`` (source, raw record) pairs drawn from the corpus's events, each with fresh values."""
    make_corpus.R.seed(seed)
    rng = random.Random(seed)
    pool = [(fmt, ev, rng.paretovariate(1.2)) for fmt, events in EVENTS.items() for ev in events]
    picks = rng.choices(pool, weights=[w for _, _, w in pool], k=lines)
    return [(f"/var/log/{fmt}.log", make_corpus.record(fmt, ev)) for fmt, ev, _ in picks]


def make_messages(lines: int, nodes: int, batch: int, seed: int = 7) -> tuple[list[bytes], int]:
    """Kafka message bytes (one LogBatch each, one source per batch) and how many distinct events they hold."""
    rng = random.Random(seed)
    drawn = corpus_lines(lines, seed)
    by_source: dict[str, list[str]] = {}
    for source, text in drawn:
        by_source.setdefault(source, []).append(text)
    now = time.time() - 600
    out, i = [], 0
    for source, texts in by_source.items():
        for k in range(0, len(texts), batch):
            node = f"gpu-node-{rng.randrange(nodes):03d}"
            records = [{"ts": now + (i + j) * 600 / lines, "message": t, "source": source,
                        "labels": {"job": f"job-{node[-3:]}"}} for j, t in enumerate(texts[k:k + batch])]
            i += len(records)
            out.append(orjson.dumps({"v": 1, "kind": "logs", "node": node, "records": records}))
    rng.shuffle(out)
    return out, len({(fmt, ev["id"]) for fmt, events in EVENTS.items() for ev in events})


def warm_driver() -> float:
    """Import what clickhouse-connect loads lazily on a process's first insert; its CPU seconds."""
    from clickhouse_connect.driver import options

    t0 = time.process_time()
    options.pd  # noqa: B018 - reading the attribute imports pandas
    return time.process_time() - t0


def run(lines: int, nodes: int, batch: int, flush_rows: int) -> dict:
    messages, events = make_messages(lines, nodes, batch)
    startup = warm_driver()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"chdb://{tmp}/clickhouse")
        store.apply_schema()
        processor = LogProcessor(Path(tmp) / "state", lines_per_s=1e9, burst_lines=1e9)
        to_template_row = TEMPLATES_SPEC.converter()
        t = {"decode": 0.0, "process": 0.0, "convert": 0.0, "insert": 0.0}
        log_buf, tpl_buf = LOGS.new_rows(), []  # as the sink buffers them (logs: columns)
        clock = time.process_time  # stage times in CPU seconds (all threads): a busy machine does not inflate them
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for offset, raw in enumerate(messages):
            a = clock()
            batch_ = salvage_log_batch(raw).batch
            b = clock()
            out = processor.process(batch_, 0, offset)
            c = clock()
            log_buf.extend(out.log_rows)
            tpl_buf.extend(map(to_template_row, out.template_rows))
            d = clock()
            t["decode"] += b - a
            t["process"] += c - b
            t["convert"] += d - c
            if len(log_buf) >= flush_rows or offset == len(messages) - 1:
                store.insert("logs", log_buf, LOG_COLUMNS)
                store.insert(TEMPLATE_TABLE, tpl_buf, TEMPLATE_COLUMNS)
                log_buf, tpl_buf = LOGS.new_rows(), []
                t["insert"] += clock() - d
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        stored = store.query("SELECT count() FROM gpuwatch.logs").rows[0][0]
        templates = store.query("SELECT count() FROM gpuwatch.log_templates_current").rows[0][0]
        processor.close()
        store.close()
    return {"lines": lines, "events": events, "stored": stored, "templates": templates, "wall_s": wall, "cpu_s": cpu, **t,
            "stats": processor.stats(), "startup_s": startup}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--nodes", type=int, default=50)
    ap.add_argument("--batch", type=int, default=1000, help="records per Kafka message")
    ap.add_argument("--flush-rows", type=int, default=50_000, help="rows per ClickHouse insert")
    ap.add_argument("--target", type=float, default=50_000.0)
    ap.add_argument("--default-gc", action="store_true",
                    help="keep CPython's GC settings (default: the worker's, pipelines.worker_gc)")
    args = ap.parse_args()
    if not args.default_gc:
        tune_gc_for_streaming()
    r = run(args.lines, args.nodes, args.batch, args.flush_rows)
    n = r["lines"]
    print(f"stats: {r['stats']}")
    print(f"CPU time per line (us): decode {r['decode'] / n * 1e6:.2f}, process (mine+patterns+anomalies) "
          f"{r['process'] / n * 1e6:.2f}, row convert {r['convert'] / n * 1e6:.2f}, "
          f"ClickHouse insert {r['insert'] / n * 1e6:.2f}")
    per_core = n / r["cpu_s"]
    gc_mode = "CPython's default GC" if args.default_gc else f"the worker's GC settings (freeze, {YOUNG_THRESHOLD})"
    print(f"lines: {n:,} raw lines of {r['events']} corpus events from {args.nodes} nodes, stored {r['stored']:,}, "
          f"templates {r['templates']}, {gc_mode}")
    print(f"not timed: the driver's one-time import of pandas at start-up, {r['startup_s']:.2f} CPU-s")
    print(f"wall: {r['wall_s']:.2f}s = {n / r['wall_s']:,.0f} lines/s (one process, one Python thread)")
    print(f"cpu:  {r['cpu_s']:.2f}s = {per_core:,.0f} lines/s per core "
          f"(target {args.target:,.0f}: {'PASS' if per_core >= args.target else 'BELOW TARGET'})")
    return 0 if r["stored"] == n and per_core >= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
