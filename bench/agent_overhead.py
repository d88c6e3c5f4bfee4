"""What the node agent costs a GPU host, per GPU and for eight, and how fast an XID leaves it.

Runs the real agent (``agents.main.run_agent``, every default collector, the
real Kafka producer) as a child process at a 1 s scrape interval while this
process writes 1,000 log lines a second into a file the agent tails, and an
XID line into its kernel-log source every couple of seconds.

NVML is either the real library on this host's GPUs (``--nvml real``, the
default when NVML starts here) or the fake at the pynvml boundary
(``--nvml fake``) with the per-call costs measured on an H200 (energy 3.9 ms
of CPU, PCIe throughput ~21 ms of wall per direction, the replay counter
150 us, the rest 5 us): ``agents.collectors.nvml_fake.H200_COSTS``. Every
figure is labelled with which one was used.

Two runs: one without NVML (the agent's fixed cost: host, logs, Kafka) and
one with the GPUs. Per-GPU cost is the difference over the GPU count; the
eight-GPU figure is the fixed cost plus eight times that (with the fake the
eight GPUs are also measured directly). The child starts as ``gpuwatch-agent``
does and loads nothing of the harness the agent does not load itself, so its
figures are the agent's. CPU is the child's user+system time over the window
(librdkafka's threads included) over wall time, and also per tick from the
agent's own ``agent_cpu_seconds_total`` (its rusage), which a loaded machine
distorts less than a percentage; peak RSS is the kernel's high-water mark
(``VmHWM``), with the RSS the agent reports each scrape alongside to place the
peak (start-up or steady state); tick time is the agent's own
``agent_scrape_duration_s`` from every batch that reached Kafka; XID latency
is from the line's write to the event's arrival at a consumer in this process.

Without ``--bootstrap`` it starts a local Kafka broker for the run. Figures
are printed last; the exit code is 1 when a target is missed:

    python bench/agent_overhead.py --seconds 60 [--nvml fake]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_CPU_PCT = 1.0    # of one core, eight GPUs at 1 Hz with 1,000 log lines/s
TARGET_RSS_MB = 50.0
TARGET_TICK_MS = 100.0  # wall time of the slowest scrape
TARGET_XID_MS = 50.0    # p99, kernel line written -> event at a consumer
TOPICS = ("metrics", "events", "heartbeats", "logs")


def _child(args: argparse.Namespace) -> int:
    """The agent itself, with the real NVML or the cost-faithful fake in place of the driver.

    It starts as ``gpuwatch-agent`` does (agents.cli.main): the agent's modules imported without Python's
    OpenSSL bindings. Nothing of the harness is loaded here that the agent does not load itself.
    """
    from agents.lean_imports import AGENT_MODULES, import_without_openssl

    import_without_openssl((*AGENT_MODULES, "agents.collectors.nvml_fake", "pynvml"))
    from agents.main import run_agent

    nvml = None
    if args.nvml == "fake":
        from agents.collectors.nvml_fake import H200_COSTS, FakeGpu, FakeNvml

        gpus = [FakeGpu(i, processes=[(os.getppid(), 30 * 2**30, 95, 60)]) for i in range(args.gpus)]
        nvml = FakeNvml(gpus, costs=H200_COSTS)
    ns = argparse.Namespace(config=args.config, bootstrap=args.bootstrap, once=False, dry_run=False,
                            metrics_port=None)
    return run_agent(ns, {"bootstrap.servers": args.bootstrap}, nvml=nvml)


def _status_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _threads_cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds by thread name (librdkafka names its threads; Python's show as the interpreter's name)."""
    out: dict[str, float] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            if tid == str(pid):
                name = "main (Python: the scrape)"
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = name.rstrip("0123456789/:") or name
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


_WORDS = ("step", "loss", "lr", "grad_norm", "tokens/s", "rank", "allreduce", "checkpoint", "dataloader", "epoch")


def _log_line(i: int, rng: random.Random) -> str:
    words = " ".join(rng.choice(_WORDS) for _ in range(8))
    return (f"2024-05-01 10:{i // 60000 % 60:02d}:{i // 1000 % 60:02d},{i % 1000:03d} INFO trainer rank={i % 8} "
            f"step={i} loss={rng.uniform(1, 3):.4f} {words}\n")


class _Load:
    """1,000 log lines/s in 10 bursts a second, and an XID line (pid = its number) every ``xid_every_s``."""

    def __init__(self, log: Path, kern: Path, rate: int, xid_every_s: float) -> None:
        self.log, self.kern, self.rate, self.xid_every_s = log, kern, rate, xid_every_s
        self.written = 0
        self.xid_written: dict[int, float] = {}
        self._rng = random.Random(0)

    def run(self, seconds: float, proc: subprocess.Popen, xids: bool) -> None:
        t0 = time.monotonic()
        next_xid = t0 + self.xid_every_s / 2
        with open(self.log, "a", buffering=1 << 16) as f:
            tick = 0
            while time.monotonic() - t0 < seconds and proc.poll() is None:
                tick += 1
                for _ in range(self.rate // 10):
                    f.write(_log_line(self.written, self._rng))
                    self.written += 1
                if tick % 50 == 0:
                    f.write("Traceback (most recent call last):\n  File \"train.py\", line 9, in step\n"
                            "RuntimeError: NCCL timeout\n")
                f.flush()
                if xids and time.monotonic() >= next_xid:
                    next_xid += self.xid_every_s
                    n = 100_000 + len(self.xid_written)
                    line = f"[ 8100.5] NVRM: Xid (PCI:0000:17:00): 48, pid={n}, name=python, double bit error\n"
                    fd = os.open(self.kern, os.O_WRONLY | os.O_NONBLOCK)  # the agent holds the read end
                    try:
                        self.xid_written[n] = time.time()
                        os.write(fd, line.encode())
                    finally:
                        os.close(fd)
                time.sleep(max(0.0, t0 + tick * 0.1 - time.monotonic()))


class _RssSampler(threading.Thread):
    """The agent's VmRSS every 100 ms from its start, so a peak can be placed (start-up or steady state)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.started = time.monotonic()
        self.samples: list[tuple[float, float]] = []  # (seconds since start, MB)
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.1):
            try:
                self.samples.append((time.monotonic() - self.started, _status_kb(self.pid, "VmRSS") / 1024))
            except OSError:
                return

    def peak_at(self) -> float:
        return max(self.samples, key=lambda s: s[1])[0] if self.samples else float("nan")


class _Receiver(threading.Thread):
    """Consumes the run's topics as they arrive: XID arrival times, tick durations, counts."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        super().__init__(daemon=True)
        from confluent_kafka import Consumer

        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex,
                           "auto.offset.reset": "earliest", "fetch.wait.max.ms": 5})
        self.c.subscribe([f"{prefix}.{t}" for t in TOPICS])
        self.xid_arrived: dict[int, float] = {}
        self.scrape_s: list[float] = []
        self.rss_mb: list[float] = []  # the agent's own reading of its RSS, each scrape
        self.cpu_s: list[tuple[float, float]] = []  # (batch time, the agent's own user+system seconds)
        self.batches = self.samples = self.records = 0
        self.stop = threading.Event()

    def run(self) -> None:
        import orjson

        while not self.stop.is_set():
            m = self.c.poll(0.05)
            if m is None or m.error():
                continue
            arrived = time.time()
            v = orjson.loads(m.value())
            kind = v.get("kind")
            if kind == "event" and v.get("source") == "xid":
                pid = v.get("labels", {}).get("pid", "")
                if pid.isdigit():
                    self.xid_arrived.setdefault(int(pid), arrived)
            elif kind == "metrics":
                self.batches += 1
                self.samples += len(v["samples"])
                for s in v["samples"]:
                    if s["metric"] == "agent_scrape_duration_s":
                        self.scrape_s.append(s["value"])
                    elif s["metric"] == "agent_rss_bytes":
                        self.rss_mb.append(s["value"] / 2**20)
                    elif s["metric"] == "agent_cpu_seconds_total":
                        self.cpu_s.append((v["ts"], s["value"]))
            elif kind == "logs":
                self.records += len(v["records"])
        self.c.close()


def _write_config(tmp: Path, log: Path, kern: Path, prefix: str, nvml: bool) -> Path:
    import yaml

    cfg = {
        "node": "bench-node", "interval_s": 1.0, "state_dir": str(tmp / "state"), "log_level": "WARNING",
        "kafka": {"topics": {k: f"{prefix}.{k}" for k in TOPICS}},
        "collectors": {"nvml": {"enabled": nvml}, "xid": {"source": str(kern)},
                       "logfiles": {"enabled": True, "paths": [str(log)]}, "jobsdk": {"listen": "127.0.0.1:0"}},
    }
    p = tmp / "agent.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def _create_topics(bootstrap: str, prefix: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(f"{prefix}.{k}", 1, 1) for k in TOPICS]).values():
        f.result(30)


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))] if s else float("nan")


def measure(args: argparse.Namespace, gpus: int, label: str) -> dict:
    """One run of the agent: ``gpus`` GPUs (0: NVML off). Returns its figures."""
    with tempfile.TemporaryDirectory(prefix="gpuwatch-bench-") as tmpdir:
        tmp = Path(tmpdir)
        prefix = f"bench{uuid.uuid4().hex[:8]}"
        _create_topics(args.bootstrap, prefix)
        log, kern = tmp / "train.log", tmp / "kern.fifo"
        log.write_text("")
        os.mkfifo(kern)  # readiness-driven like /dev/kmsg on a real host (a plain file would be polled)
        cfg = _write_config(tmp, log, kern, prefix, nvml=gpus > 0)
        rx = _Receiver(args.bootstrap, prefix)
        rx.start()
        # The agent's own modules first, and whatever the caller's PYTHONPATH held after them.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))}
        print(f"run: {label} ...", file=sys.stderr)
        proc = subprocess.Popen([sys.executable, __file__, "--child", "--config", str(cfg), "--bootstrap",
                                 args.bootstrap, "--gpus", str(max(gpus, 1)), "--nvml", args.nvml], env=env)
        load = _Load(log, kern, args.log_rate, args.xid_every)
        rss = _RssSampler(proc.pid)
        rss.start()
        try:
            load.run(args.warmup, proc, xids=False)
            cpu0, t0, th0, wall0 = _cpu_s(proc.pid), time.monotonic(), _threads_cpu_s(proc.pid), time.time()
            load.run(args.seconds, proc, xids=True)
            cpu1, t1, th1, wall1 = _cpu_s(proc.pid), time.monotonic(), _threads_cpu_s(proc.pid), time.time()
            hwm_kb = _status_kb(proc.pid, "VmHWM")
            rss.stop.set()
            if proc.poll() is not None:
                raise SystemExit(f"the agent exited early with code {proc.returncode}")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(rx.xid_arrived) < len(load.xid_written):
            time.sleep(0.1)
        time.sleep(1.0)
        rx.stop.set()
        rx.join(10)
    lat = [(rx.xid_arrived[n] - w) * 1e3 for n, w in load.xid_written.items() if n in rx.xid_arrived]
    ticks = [(ts, c) for ts, c in rx.cpu_s if wall0 <= ts <= wall1]
    cpu_ms_per_tick = ((ticks[-1][1] - ticks[0][1]) * 1e3 / (len(ticks) - 1)) if len(ticks) > 1 else float("nan")
    window_rss = [mb for at, mb in rss.samples if at >= t0 - rss.started]
    return {"cpu_ms_per_tick": cpu_ms_per_tick, "rss_window": window_rss, "rss_peak_at_s": rss.peak_at(),
            "label": label, "gpus": gpus, "cpu_pct": 100.0 * (cpu1 - cpu0) / (t1 - t0), "rss_mb": hwm_kb / 1024,
            "tick_ms": [s * 1e3 for s in rx.scrape_s], "first_tick_ms": rx.scrape_s[0] * 1e3 if rx.scrape_s else 0,
            "xid_ms": lat, "xid_sent": len(load.xid_written),
            "batches": rx.batches, "samples": rx.samples, "records": rx.records, "window_s": t1 - t0,
            "lines_per_s": load.written / (args.warmup + args.seconds),
            "by_thread": {k: 100.0 * (v - th0.get(k, 0.0)) / (t1 - t0) for k, v in th1.items()}}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60.0, help="measured window per run (default 60)")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring (default 5)")
    p.add_argument("--gpus", type=int, default=8, help="fake GPUs (default 8); real mode uses the host's")
    p.add_argument("--nvml", choices=("real", "fake"), default=None,
                   help="the real NVML on this host's GPUs or the cost-faithful fake (default: real if found)")
    p.add_argument("--log-rate", type=int, default=1000, help="log lines per second (default 1000)")
    p.add_argument("--xid-every", type=float, default=2.0, help="seconds between injected XID lines (default 2)")
    p.add_argument("--bootstrap", help="an existing Kafka; default: start a local one for the run")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--config", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return _child(args)

    from agents.collectors.nvml import real_gpu_count

    found = real_gpu_count()
    if args.nvml is None:
        args.nvml = "real" if found else "fake"
    if args.nvml == "real" and not found:
        print("--nvml real: NVML does not start here or sees no GPU", file=sys.stderr)
        return 2
    n = found if args.nvml == "real" else args.gpus
    what = (f"REAL NVML, {n} GPU(s) on this host" if args.nvml == "real" else
            f"FAKE NVML with H200 per-call costs, {n} simulated GPU(s) (no GPU measured)")

    broker = None
    with tempfile.TemporaryDirectory(prefix="gpuwatch-bench-kafka-") as kdir:
        if not args.bootstrap:
            from infra.kafka.broker import LocalKafka, free_port

            print("starting a local Kafka broker ...", file=sys.stderr)
            broker = LocalKafka(Path(kdir), port=free_port(), controller_port=free_port()).start(timeout=180)
            args.bootstrap = broker.bootstrap
        try:
            base = measure(args, 0, "no NVML (host, logs, XID, Kafka)")
            full = measure(args, n, what)
        finally:
            if broker is not None:
                broker.stop()

    per_cpu = (full["cpu_pct"] - base["cpu_pct"]) / n
    per_rss = (full["rss_mb"] - base["rss_mb"]) / n
    cpu8, rss8 = base["cpu_pct"] + 8 * per_cpu, base["rss_mb"] + 8 * per_rss
    xid = base["xid_ms"] + full["xid_ms"]
    xid_sent = base["xid_sent"] + full["xid_sent"]
    tick_max = max(full["tick_ms"], default=float("nan"))
    for r in (base, full):
        print(f"[{r['label']}] {r['window_s']:.0f} s window at 1 Hz, {r['lines_per_s']:.0f} log lines/s: "
              f"CPU {r['cpu_pct']:.2f}% of a core, peak RSS {r['rss_mb']:.1f} MB; delivered {r['batches']} metric "
              f"batches ({r['samples'] / max(1, r['batches']):.0f} samples each), {r['records']} log records; "
              f"tick p50 {_pct(r['tick_ms'], .5):.1f} ms, slowest {sorted(r['tick_ms'])[-3:]} ms "
              f"(first {r['first_tick_ms']:.1f} ms)")
        w = r["rss_window"]
        print(f"  the agent's RSS in the window: median {_pct(w, .5):.1f} MB, max {max(w, default=float('nan')):.1f} "
              f"MB; its peak (VmHWM) came {r['rss_peak_at_s']:.1f} s after start; "
              f"CPU {r['cpu_ms_per_tick']:.2f} ms per tick (its own user+system time, all threads)")
        print("  CPU by thread: " + ", ".join(f"{k} {v:.2f}%" for k, v in sorted(r["by_thread"].items(),
                                                                                 key=lambda kv: -kv[1]) if v > 0))
    print(f"NVML: {what}")
    print(f"per GPU: {per_cpu:.3f}% of a core, {per_rss:.2f} MB RSS")
    results = [
        ("CPU, 8 GPUs" + (" (measured)" if n == 8 else " (extrapolated)"), cpu8, TARGET_CPU_PCT, "% of a core"),
        ("peak RSS, 8 GPUs" + (" (measured)" if n == 8 else " (extrapolated)"), rss8, TARGET_RSS_MB, "MB"),
        (f"slowest tick, {n} GPUs", tick_max, TARGET_TICK_MS, "ms"),
        (f"XID line -> consumer p99 ({len(xid)}/{xid_sent} arrived; p50 {_pct(xid, .5):.1f}, "
         f"max {max(xid, default=float('nan')):.1f})", _pct(xid, .99), TARGET_XID_MS, "ms"),
    ]
    missed = len(xid) < xid_sent
    for name, value, target, unit in results:
        ok = value <= target
        missed |= not ok
        print(f"{name}: {value:.2f} {unit} (target <= {target:g}) {'OK' if ok else 'MISSED'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
