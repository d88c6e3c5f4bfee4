"""What the node agent costs a GPU host: CPU (% of one core) and peak RSS.

Runs the real agent (``agents.main.run_agent``, every default collector, the
real Kafka producer) as a child process at a 1 s scrape interval with 8
simulated GPUs (the NVML fake at the pynvml boundary) while this process
writes 1,000 log lines a second into a file the agent tails. CPU is the
child's user+system time over the measured window (all threads, librdkafka's
included) divided by wall time; peak RSS is the kernel's high-water mark
(``VmHWM``) for the child over its whole life, start-up included.

Without ``--bootstrap`` it starts a local Kafka broker (infra/kafka/broker.py)
on free loopback ports for the run. Figures are printed last:

    python bench/agent_overhead.py --seconds 60
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_CPU_PCT = 1.0
TARGET_RSS_MB = 60.0


def _child(args: argparse.Namespace) -> int:
    """The agent itself, with the NVML fake in place of the driver."""
    from agents.collectors.nvml_fake import FakeGpu, FakeNvml
    from agents.main import run_agent

    gpus = [FakeGpu(i, processes=[(os.getppid(), 30 * 2**30, 95, 60)]) for i in range(args.gpus)]
    ns = argparse.Namespace(config=args.config, bootstrap=args.bootstrap, once=False, dry_run=False)
    return run_agent(ns, {"bootstrap.servers": args.bootstrap}, nvml=FakeNvml(gpus))


def _status_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


_WORDS = ("step", "loss", "lr", "grad_norm", "tokens/s", "rank", "allreduce", "checkpoint", "dataloader", "epoch")


def _log_line(i: int, rng: random.Random) -> str:
    words = " ".join(rng.choice(_WORDS) for _ in range(8))
    return (f"2024-05-01 10:{i // 60000 % 60:02d}:{i // 1000 % 60:02d},{i % 1000:03d} INFO trainer rank={i % 8} "
            f"step={i} loss={rng.uniform(1, 3):.4f} {words}\n")


def _write_logs(path: Path, rate: int, seconds: float, proc: subprocess.Popen) -> int:
    """Append ``rate`` lines/s in 10 bursts a second (a traceback now and then, as real jobs do)."""
    rng = random.Random(0)
    written = 0
    t0 = time.monotonic()
    with open(path, "a", buffering=1 << 16) as f:
        tick = 0
        while time.monotonic() - t0 < seconds and proc.poll() is None:
            tick += 1
            for _ in range(rate // 10):
                f.write(_log_line(written, rng))
                written += 1
            if tick % 50 == 0:
                f.write("Traceback (most recent call last):\n  File \"train.py\", line 9, in step\n"
                        "RuntimeError: NCCL timeout\n")
            f.flush()
            time.sleep(max(0.0, t0 + tick * 0.1 - time.monotonic()))
    return written


def _write_config(tmp: Path, log: Path, topic_prefix: str) -> Path:
    import yaml

    cfg = {
        "node": "bench-node", "interval_s": 1.0, "state_dir": str(tmp / "state"), "log_level": "WARNING",
        "kafka": {"topics": {k: f"{topic_prefix}.{k}" for k in ("metrics", "events", "heartbeats", "logs")}},
        "collectors": {"logfiles": {"enabled": True, "paths": [str(log)]}, "jobsdk": {"listen": "127.0.0.1:0"}},
    }
    p = tmp / "agent.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def _create_topics(bootstrap: str, prefix: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(f"{prefix}.{k}", 1, 1) for k in ("metrics", "events", "heartbeats",
                                                                             "logs")])
    for f in futures.values():
        f.result(30)


def _delivered(bootstrap: str, prefix: str) -> tuple[int, int, int]:
    """(metric batches, samples, log records) that reached Kafka: proof the agent did the work it was timed on."""
    import uuid

    import orjson
    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex, "auto.offset.reset": "earliest"})
    c.subscribe([f"{prefix}.metrics", f"{prefix}.logs"])
    batches = samples = records = 0
    idle_until = time.monotonic() + 10
    while time.monotonic() < idle_until:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        idle_until = time.monotonic() + 2
        v = orjson.loads(m.value())
        if v["kind"] == "metrics":
            batches += 1
            samples += len(v["samples"])
        else:
            records += len(v["records"])
    c.close()
    return batches, samples, records


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60.0, help="measured window (default 60)")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring (default 5)")
    p.add_argument("--gpus", type=int, default=8)
    p.add_argument("--log-rate", type=int, default=1000, help="log lines per second (default 1000)")
    p.add_argument("--bootstrap", help="an existing Kafka; default: start a local one for the run")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--config", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return _child(args)

    broker = None
    with tempfile.TemporaryDirectory(prefix="gpuwatch-bench-") as tmpdir:
        tmp = Path(tmpdir)
        if not args.bootstrap:
            from infra.kafka.broker import LocalKafka, free_port

            print("starting a local Kafka broker ...", file=sys.stderr)
            broker = LocalKafka(tmp / "kafka", port=free_port(), controller_port=free_port()).start(timeout=180)
            args.bootstrap = broker.bootstrap
        try:
            prefix = f"bench{int(time.time())}"
            _create_topics(args.bootstrap, prefix)
            log = tmp / "train.log"
            log.write_text("")
            cfg = _write_config(tmp, log, prefix)
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            proc = subprocess.Popen([sys.executable, __file__, "--child", "--config", str(cfg), "--bootstrap",
                                     args.bootstrap, "--gpus", str(args.gpus)], env=env)
            try:
                written = _write_logs(log, args.log_rate, args.warmup, proc)
                cpu0, t0 = _cpu_s(proc.pid), time.monotonic()
                rss_samples: list[int] = []
                written += _write_logs(log, args.log_rate, args.seconds, proc)
                cpu1, t1 = _cpu_s(proc.pid), time.monotonic()
                rss_samples.append(_status_kb(proc.pid, "VmRSS"))
                hwm_kb = _status_kb(proc.pid, "VmHWM")
                if proc.poll() is not None:
                    print(f"the agent exited early with code {proc.returncode}", file=sys.stderr)
                    return 1
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            batches, samples, records = _delivered(args.bootstrap, prefix)
        finally:
            if broker is not None:
                broker.stop()
    cpu_pct = 100.0 * (cpu1 - cpu0) / (t1 - t0)
    rss_mb = hwm_kb / 1024
    print(f"window: {t1 - t0:.1f} s at a 1 s scrape interval, {args.gpus} simulated GPUs, "
          f"{written / (args.warmup + args.seconds):.0f} log lines/s ({written} written)")
    print(f"delivered to Kafka: {batches} metric batches ({samples / max(1, batches):.0f} samples each), "
          f"{records} log records")
    print(f"agent RSS at the end: {rss_samples[-1] / 1024:.1f} MB")
    print(f"agent CPU: {cpu_pct:.2f}% of one core (target <= {TARGET_CPU_PCT:.0f}%)"
          f" {'OK' if cpu_pct <= TARGET_CPU_PCT else 'OVER'}")
    print(f"agent peak RSS: {rss_mb:.1f} MB (target <= {TARGET_RSS_MB:.0f} MB)"
          f" {'OK' if rss_mb <= TARGET_RSS_MB else 'OVER'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
