"""Ingest throughput: the pipeline end to end against its own columnar I/O floor, in one run.

One backlog of simulated metric batches (default 64 nodes x 8 GPUs x 300 scrapes,
about 1.16 M samples) is published to a real local Kafka broker. Then, each in
its own process with its own chDB path:

1. **passthrough floor**: a confluent-kafka consumer reads the backlog, decodes
   each poll into columns (:mod:`pipelines.transforms.metric_columns`, the same
   contract checks as the pipeline), and inserts Arrow tables of about 50 k rows
   into ``metrics_raw`` with an insert deduplication token: the best the I/O
   allows, no per-row loop;
2. **pipeline**: ``gpuwatch pipeline`` (validate, store raw, windows, rules,
   every detector tier, alerts) drains the same backlog until ``metrics_raw``
   holds every sample; then two workers do it together.

Throughput is samples per CPU-second of the process doing the work (Python
and chDB's threads together), so neither side flatters itself with more cores;
the pipeline's start-up CPU (imports, Faust, schema: measured on an idle worker
on empty topics) is taken out, and shown. Peak RSS is the process's high-water
mark. Then **two workers** in one consumer group, each with its own store, drain
the same backlog: samples/s from the first sample stored to the last, against
one worker's. Figures are printed last; the exit status is non-zero when a
target is missed.

    .venv/bin/python bench/ingest_throughput.py [--nodes 64] [--gpus 8] [--ticks 300]

Targets (issue 10): pipeline >= 100,000 samples/CPU-s and >= 0.25x the floor;
peak RSS <= 500 MiB; two workers >= 1.6x one.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infra.kafka.broker import LocalKafka, free_port  # noqa: E402
from pipelines.devstack import spawn, wait_for  # noqa: E402

TARGET_SAMPLES_PER_CPU_S = 100_000
TARGET_RATIO_TO_FLOOR = 0.25
TARGET_PEAK_RSS_MIB = 500
TARGET_TWO_WORKERS = 1.6
INSERT_ROWS = 50_000
#: How long the idle worker rests after it answers, before its start-up CPU is read.
IDLE_S = 5.0


def publish_backlog(bootstrap: str, prefix: str, home: Path, nodes: int, gpus: int, ticks: int) -> int:
    env = {"GPUWATCH_KAFKA_BOOTSTRAP": bootstrap, "GPUWATCH_TOPIC_PREFIX": prefix, "GPUWATCH_HOME": str(home)}
    # The pipeline creates topics; create them first so the simulator's batches have somewhere to go.
    _create_topics(bootstrap, prefix)
    child = spawn("simulate", ["agent", "--simulate", str(nodes), "--gpus", str(gpus), "--ticks", str(ticks)],
                  env, home)
    if child.popen.wait(1800) != 0:
        raise SystemExit(f"the simulator failed:\n{child.output()[-2000:]}")
    summary = orjson.loads(child.output().strip().splitlines()[-1])
    return int(summary["samples_published"])


def floor_worker(bootstrap: str, topic: str, chdb_dir: str, expected: int) -> None:
    """Runs in its own process: consume, decode into columns, insert Arrow. Prints a JSON result."""
    from confluent_kafka import Consumer

    from pipelines.store import Store
    from pipelines.transforms.metric_columns import decode_metric_messages

    store = Store(f"chdb://{chdb_dir}")
    store.apply_schema()
    table = f"{store.database}.metrics_raw"
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"floor-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    cpu0 = _cpu_s()
    stored, pending, pending_rows, idle_since = 0, [], 0, None
    while stored < expected:
        msgs = consumer.consume(2000, 0.5)
        if not msgs:
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > 60:
                break
        else:
            idle_since = None
        cols, rejected = decode_metric_messages((m.value(), m.partition(), m.offset()) for m in msgs if not m.error())
        if len(cols):
            pending.append(cols)
            pending_rows += len(cols)
        if pending and (pending_rows >= INSERT_ROWS or not msgs or stored + pending_rows >= expected):
            for part in pending:
                token = f"metrics_raw:{part.batch_partition[0]}:{part.batch_offset[0]}-{part.batch_offset[-1]}"
                store._client.insert_arrow(table, part.to_arrow(), settings={"insert_deduplication_token": token})
            stored += pending_rows
            pending, pending_rows = [], 0
            consumer.commit(asynchronous=True)
    cpu = _cpu_s() - cpu0
    count = store.query(f"SELECT count() FROM {table}").rows[0][0]
    print(orjson.dumps({"samples": count, "cpu_s": cpu, "peak_rss_mib": _peak_rss_mib()}).decode())


def run_floor(bootstrap: str, topic: str, home: Path, expected: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--floor-worker", bootstrap, topic, str(home / "floor-ch"),
                          str(expected)], capture_output=True, text=True, timeout=1800,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    if out.returncode != 0:
        raise SystemExit(f"the passthrough floor failed:\n{out.stderr[-3000:]}")
    return orjson.loads(out.stdout.strip().splitlines()[-1])


class Worker:
    """One ``gpuwatch pipeline`` process with its own home (and chDB path), in consumer group ``app_id``."""

    def __init__(self, bootstrap: str, prefix: str, home: Path, app_id: str) -> None:
        import psutil

        self.port = free_port()
        env = {"GPUWATCH_KAFKA_BOOTSTRAP": bootstrap, "GPUWATCH_TOPIC_PREFIX": prefix, "GPUWATCH_HOME": str(home),
               "GPUWATCH_APP_ID": app_id, "GPUWATCH_WEB_PORT": str(self.port), "GPUWATCH_LOG_LEVEL": "warning"}
        self.child = spawn(f"pipeline-{home.name}", ["pipeline"], env, home)
        self.proc = psutil.Process(self.child.popen.pid)
        self.peak = 0
        #: peak of RSS less its file-backed pages (the libraries' code mapped from disk, chDB's most of it)
        self.peak_anon = 0

    def stored(self) -> int | None:
        """Samples this worker has stored in ``metrics_raw`` (None while its web server does not answer).

        Read from /healthz (the sink's count of rows written): a SQL count through /query opens a
        query session each time, CPU the worker would be charged for the benchmark's own polling.
        """
        if self.child.popen.poll() is not None:
            raise SystemExit(f"the pipeline exited:\n{self.child.output()[-3000:]}")
        mem = self.proc.memory_info()
        self.peak, self.peak_anon = max(self.peak, mem.rss), max(self.peak_anon, mem.rss - mem.shared)
        try:
            r = httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=30)
            return int(r.json()["sink"]["rows_written"].get("metrics_raw", 0))
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return None

    def counted(self) -> int:
        """Rows in ``metrics_raw`` by SQL: what the store holds (once, at the end)."""
        r = httpx.post(f"http://127.0.0.1:{self.port}/query", timeout=60,
                       json={"sql": "SELECT count() FROM gpuwatch.metrics_raw"})
        return int(r.json()["rows"][0][0])

    def samples_by_message(self) -> dict[tuple[int, int], int]:
        """(partition, offset) -> distinct samples of that message this worker stored."""
        r = httpx.post(f"http://127.0.0.1:{self.port}/query", timeout=120, json={
            "sql": "SELECT src_partition, src_offset, uniqExact(node, gpu, metric, ts) FROM gpuwatch.metrics_raw "
                   "GROUP BY src_partition, src_offset"})
        return {(int(p), int(o)): int(n) for p, o, n in r.json()["rows"]}

    def gc_pauses(self) -> dict:
        """The worker's garbage-collection pauses, from its ``gpuwatch_gc_pause_seconds`` histogram, and
        its CPU by stage (``gpuwatch_stage_cpu_seconds``: decode, windows, rules, detectors, arrow, insert)."""
        from prometheus_client.parser import text_string_to_metric_families

        r = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=30)
        total, buckets, stages = 0.0, {}, {}
        for fam in text_string_to_metric_families(r.text):
            if fam.name == "gpuwatch_stage_cpu_seconds":
                stages = {s.labels["stage"]: s.value for s in fam.samples if s.name.endswith("_total")}
            if fam.name == "gpuwatch_gc_pause_seconds":
                for s in fam.samples:
                    if s.name.endswith("_sum"):
                        total += s.value
                    elif s.name.endswith("_bucket"):  # cumulative per generation: add them up per bound
                        le = float(s.labels["le"])
                        buckets[le] = buckets.get(le, 0.0) + s.value
        bounds = sorted(buckets.items())
        # the longest pause is at most the first bound that holds every collection
        longest = next((le for le, n in bounds if n >= bounds[-1][1]), math.inf) if bounds else 0.0
        return {"gc_s": total, "gc_longest_le_s": longest, "stages": stages}

    def cpu_s(self) -> float:
        t = self.proc.cpu_times()
        return t.user + t.system

    def cpu_by_thread(self) -> dict[str, float]:
        """CPU seconds by thread (``/proc/PID/task``): the event loop (the main thread), the other Python
        threads together (Kafka consumer, inserts), and chDB's native threads by name. py-spy cannot say
        this: a thread waiting for the GIL inside a call looks busy there. Threads already ended are not
        counted."""
        tick = os.sysconf("SC_CLK_TCK")
        python = Path(sys.executable).name[:15]
        out: dict[str, float] = {}
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            try:
                name = (task / "comm").read_text().strip()
                fields = (task / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue  # the thread ended
            if task.name == str(self.proc.pid):
                name = "event loop"
            elif name == python or name.startswith("python"):
                name = "other Python threads"
            out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
        return out

    def peak_rss_mib(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as f:
            hwm = next((int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM")), self.peak)
        return max(self.peak, hwm) / 2**20

    def stop(self) -> None:
        self.child.stop(30)


def distinct_samples(workers: list[Worker]) -> int:
    """Samples stored by any worker, each counted once.

    After a rebalance the new owner of a partition re-reads it from its last
    commit (at-least-once), so the old owner's store and the new one's both
    hold the rows in between: a sum of rows would count them twice and call the
    backlog stored while part of it is not.
    """
    seen: dict[tuple[int, int], int] = {}
    for w in workers:
        for key, n in w.samples_by_message().items():
            seen[key] = max(n, seen.get(key, 0))
    return sum(seen.values())


def run_idle(bootstrap: str, home: Path) -> dict:
    """A worker on empty topics: the CPU it spends starting up and idling, and its resting RSS."""
    prefix = f"idle{uuid.uuid4().hex[:6]}"
    _create_topics(bootstrap, prefix)
    w = Worker(bootstrap, prefix, home, f"{prefix}-bench")
    try:
        wait_for(lambda: w.stored() is not None, timeout=600, interval=0.5, what="an idle pipeline to answer")
        wait_for(lambda: "pipeline: ready" in w.child.output(), timeout=600, interval=0.5,
                 what="an idle pipeline to be ready")
        time.sleep(IDLE_S)
        return {"cpu_s": w.cpu_s(), "rss_mib": w.proc.memory_info().rss / 2**20}
    finally:
        w.stop()


def run_workers(bootstrap: str, prefix: str, home: Path, expected: int, n: int, timeout: float = 3600,
                profile: tuple[str, str] | None = None) -> dict:
    """``n`` workers in one consumer group drain the backlog, each into its own store.

    Samples/s is wall time from the first sample stored to the last; CPU is every worker's, from
    its start (the idle run says how much of it is start-up).
    """
    app_id = f"{prefix}-bench{n}-{uuid.uuid4().hex[:4]}"
    workers = [Worker(bootstrap, prefix, home / f"w{n}-{i}", app_id) for i in range(n)]
    first: float | None = None
    spy = None
    if profile and n == 1:  # where a worker's time goes: py-spy's flame graph of the one-worker run
        spy = subprocess.Popen([profile[0], "record", "-p", str(workers[0].proc.pid), "-o", profile[1], "-r", "50",
                                # not pausing the worker to sample it: a paused sample lands on syscalls far
                                # too often (time.thread_time looked like 10 % of the event loop)
                                "--nonblocking", "--threads",
                                "-f", {".json": "speedscope", ".txt": "raw"}.get(Path(profile[1]).suffix, "flamegraph")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def total() -> int:
        nonlocal first
        counts = [w.stored() for w in workers]
        done = sum(c or 0 for c in counts)
        if done and first is None:
            first = time.monotonic()
        if done >= expected and n > 1:  # rows re-read after the rebalance are in two stores
            done = distinct_samples(workers)
        return done

    try:
        try:
            wait_for(lambda: total() >= expected, timeout=timeout, interval=0.5,
                     what=f"{n} pipeline worker(s) to store the backlog")
        except TimeoutError:
            print(f"{n} worker(s) stored {total():,} of {expected:,} in {timeout:.0f} s; logs: "
                  + ", ".join(str(w.child.log_path) for w in workers), flush=True)
        wall = time.monotonic() - (first or time.monotonic())
        cpu = [w.cpu_s() for w in workers]
        threads = workers[0].cpu_by_thread()
        counts = [w.counted() for w in workers]
        gc_pauses = [w.gc_pauses() for w in workers]
        distinct = distinct_samples(workers) if n > 1 else sum(counts)
        print(f"  {n} worker(s): stored {counts} ({distinct:,} distinct samples) in {wall:.1f} s, "
              f"{sum(cpu):.1f} CPU-s", flush=True)
        top = sorted(threads.items(), key=lambda kv: -kv[1])[:6]
        print("  CPU by thread (worker 1, from its start): " + ", ".join(f"{k} {v:.1f} s" for k, v in top), flush=True)
        print(f"  garbage collection: {sum(g['gc_s'] for g in gc_pauses):.1f} s of pauses, the longest <= "
              f"{max(g['gc_longest_le_s'] for g in gc_pauses):g} s", flush=True)
        stages = sorted(gc_pauses[0]["stages"].items(), key=lambda kv: -kv[1])
        print("  CPU by stage (worker 1, on the thread that ran it): "
              + ", ".join(f"{k} {v:.1f} s" for k, v in stages), flush=True)
        return {"samples": distinct, "per_worker": counts, "cpu_s": sum(cpu),
                "peak_rss_mib": max(w.peak_rss_mib() for w in workers),
                "peak_anon_mib": max(w.peak_anon for w in workers) / 2**20, "wall_s": wall}
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            spy.wait(60)
        for w in workers:
            w.stop()


def _create_topics(bootstrap: str, prefix: str) -> None:
    """The topics as ``gpuwatch pipeline`` creates them (``GPUWATCH_TOPIC_PARTITIONS`` applies)."""
    from pipelines.settings import CommonSettings
    from pipelines.topics_admin import ensure_topics
    ensure_topics(bootstrap, CommonSettings(topic_prefix=prefix, _env_file=None).topic_specs())


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a timeout still stops the broker (finally)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=64)
    ap.add_argument("--gpus", type=int, default=8)
    ap.add_argument("--ticks", type=int, default=300)
    ap.add_argument("--one-worker", action="store_true", help="skip the two-worker run (it counts as a miss)")
    ap.add_argument("--py-spy", nargs=2, metavar=("PY_SPY", "OUT"),
                    help="profile the one-worker run with this py-spy binary into OUT (.svg, .json, or .txt: collapsed stacks)")
    ap.add_argument("--floor-worker", nargs=4, metavar=("BOOTSTRAP", "TOPIC", "CHDB_DIR", "EXPECTED"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.floor_worker:
        b, t, d, n = args.floor_worker
        floor_worker(b, t, d, int(n))
        return 0

    with tempfile.TemporaryDirectory(prefix="gpuwatch-ingest-", ignore_cleanup_errors=True) as tmp:
        home = Path(tmp)
        broker = LocalKafka(home / "kafka", port=free_port(), controller_port=free_port())
        broker.start(timeout=180)
        try:
            prefix = f"b{uuid.uuid4().hex[:8]}"
            print(f"publishing {args.nodes} nodes x {args.gpus} GPUs x {args.ticks} scrapes ...", flush=True)
            published = publish_backlog(broker.bootstrap, prefix, home / "sim", args.nodes, args.gpus, args.ticks)
            print(f"published {published:,} samples; passthrough floor ...", flush=True)
            floor = run_floor(broker.bootstrap, f"{prefix}.gpuwatch.metrics.v1", home, published)
            print("pipeline: idle start-up ...", flush=True)
            idle = run_idle(broker.bootstrap, home / "idle")
            print("pipeline: one worker ...", flush=True)
            one = run_workers(broker.bootstrap, prefix, home, published, 1, profile=args.py_spy)
            two = {"samples": 0, "per_worker": [], "wall_s": math.inf}
            if not args.one_worker:
                print("pipeline: two workers ...", flush=True)
                two = run_workers(broker.bootstrap, prefix, home, published, 2,
                                  timeout=max(180.0, 3 * one["wall_s"] + 60))
        finally:
            broker.stop()

    floor_rate = floor["samples"] / floor["cpu_s"]
    # Start-up (imports, Faust, schema) is a fixed cost, not ingest: taken out, and shown.
    pipe_cpu = max(one["cpu_s"] - idle["cpu_s"], 1e-9)
    pipe_rate = one["samples"] / pipe_cpu
    ratio = pipe_rate / floor_rate
    one_rate = one["samples"] / max(one["wall_s"], 1e-9)
    two_rate = two["samples"] / max(two["wall_s"], 1e-9)
    scale = two_rate / one_rate
    misses = []
    if floor["samples"] != published or one["samples"] != published or two["samples"] != published:
        misses.append(f"stored {floor['samples']:,} (floor), {one['samples']:,} (one worker) and "
                      f"{two['samples']:,} (two workers) of {published:,}")
    if pipe_rate < TARGET_SAMPLES_PER_CPU_S:
        misses.append(f"pipeline {pipe_rate:,.0f} samples/CPU-s < {TARGET_SAMPLES_PER_CPU_S:,}")
    if ratio < TARGET_RATIO_TO_FLOOR:
        misses.append(f"pipeline/floor {ratio:.2f}x < {TARGET_RATIO_TO_FLOOR}x")
    if one["peak_rss_mib"] > TARGET_PEAK_RSS_MIB:
        misses.append(f"pipeline peak RSS {one['peak_rss_mib']:.0f} MiB > {TARGET_PEAK_RSS_MIB} MiB")
    if scale < TARGET_TWO_WORKERS:
        misses.append(f"two workers {scale:.2f}x one < {TARGET_TWO_WORKERS}x")

    print()
    print(f"backlog                      {published:>12,} samples ({args.nodes} nodes x {args.gpus} GPUs x "
          f"{args.ticks} scrapes)")
    print(f"passthrough floor (columns)  {floor_rate:>12,.0f} samples/CPU-s   {floor['cpu_s']:7.1f} CPU-s   "
          f"peak RSS {floor['peak_rss_mib']:6.0f} MiB")
    print(f"pipeline start-up (idle)     {'':>12}                 {idle['cpu_s']:7.1f} CPU-s   "
          f"RSS at rest {idle['rss_mib']:4.0f} MiB")
    print(f"gpuwatch pipeline, 1 worker  {pipe_rate:>12,.0f} samples/CPU-s   {pipe_cpu:7.1f} CPU-s   "
          f"peak RSS {one['peak_rss_mib']:6.0f} MiB   ({one['samples'] / one['cpu_s']:,.0f} with start-up)")
    print(f"  of which not file-backed   {'':>12}                           peak {one['peak_anon_mib']:6.0f} MiB   "
          "(the rest: libraries' code mapped from disk; importing chDB maps 169 MiB of it)")
    print(f"pipeline / floor             {ratio:>12.2f}x  (target >= {TARGET_RATIO_TO_FLOOR}x; "
          f">= {TARGET_SAMPLES_PER_CPU_S:,} samples/CPU-s)")
    print(f"one worker                   {one_rate:>12,.0f} samples/s        {one['wall_s']:7.1f} s")
    print(f"two workers                  {two_rate:>12,.0f} samples/s        {two['wall_s']:7.1f} s   "
          f"split {two['per_worker']}")
    print(f"two workers / one            {scale:>12.2f}x  (target >= {TARGET_TWO_WORKERS}x)")
    for m in misses:
        print(f"MISSED: {m}")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
