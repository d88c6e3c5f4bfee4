"""Notification latency and throughput: alert event on the topic -> POST at a webhook.

Starts (or uses) a Kafka broker, runs ``gpuwatch notify --webhook`` in quick mode
(no grouping delay) as a subprocess, and a local webhook that records when each
alert arrives. Two phases:

1. latency: ``--rate`` new alerts per second for ``--seconds``; per alert, the
   time from producing the event to the webhook receiving it (p50, p99);
2. throughput: ``--burst`` alerts produced at once; delivered alerts per second.

Target: p99 under 500 ms at 100 alerts/s. The figures are printed last.

    python bench/notify_latency.py [--bootstrap HOST:PORT] [--rate 100] [--seconds 20] [--burst 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from schemas.alerts import AlertEvent, alert_fingerprint  # noqa: E402
from schemas.codec import encode  # noqa: E402


class Webhook:
    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.posts = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else delayed ACKs add ~40 ms per response

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                now = time.time()
                for a in json.loads(body)["alerts"]:
                    outer.arrivals.setdefault(a["fingerprint"], now)
                outer.posts += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/bench"


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def wait_for(webhook: Webhook, fps: list[str], timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and not all(fp in webhook.arrivals for fp in fps):
        time.sleep(0.01)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", default=os.environ.get("GPUWATCH_BENCH_BOOTSTRAP"),
                    help="an existing broker (default: start a local one)")
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--burst", type=int, default=2000)
    args = ap.parse_args()

    from confluent_kafka import Producer

    from pipelines.notify.kafka_io import ensure_notify_topics
    from pipelines.notify.settings import NotifySettings

    work = Path(tempfile.mkdtemp(prefix="gpuwatch-bench-"))
    broker = None
    if not args.bootstrap:
        from infra.kafka.broker import LocalKafka, free_port
        print("starting a local Kafka broker...", flush=True)
        broker = LocalKafka(work / "kafka", port=free_port(), controller_port=free_port())
        broker.start(timeout=180)
        args.bootstrap = broker.bootstrap
    run = uuid.uuid4().hex[:8]
    alerts_topic, history_topic = f"bench{run}.alerts", f"bench{run}.notifications"
    ensure_notify_topics(NotifySettings(kafka_bootstrap=args.bootstrap, notify_alerts_topic=alerts_topic,
                                        notify_history_topic=history_topic,
                                        notify_deadletter_topic=f"bench{run}.dead", _env_file=None))
    hook = Webhook()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "GPUWATCH_HOME": str(work / "home"),
           "GPUWATCH_NOTIFY_DEADLETTER_TOPIC": f"bench{run}.dead"}
    profile = ["-m", "cProfile", "-o", os.environ["GPUWATCH_BENCH_PROFILE"]] if os.environ.get("GPUWATCH_BENCH_PROFILE") else []
    worker = subprocess.Popen([sys.executable, *profile, "-m", "pipelines.notify", "notify", "--webhook", hook.url,
                               "--bootstrap", args.bootstrap, "--alerts-topic", alerts_topic,
                               "--history-topic", history_topic, "--listen", "127.0.0.1:0", "--group-wait", "0s"],
                              env=env, stdout=subprocess.PIPE, stderr=open(work / "worker.log", "wb"))
    try:
        for line in worker.stdout:
            if line.startswith(b"notify: ready"):
                break
        else:
            print(f"worker did not start; see {work / 'worker.log'}", file=sys.stderr)
            return 1
        threading.Thread(target=lambda: [None for _ in worker.stdout], daemon=True).start()
        producer = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 0})

        def event(i: int, phase: str) -> AlertEvent:
            labels = {"node": f"node-{i % 512}", "gpu": str(i % 8), "bench": f"{phase}-{run}-{i}"}
            now = time.time()
            return AlertEvent(fingerprint=alert_fingerprint({"alertname": "BenchAlert", **labels}), status="firing",
                              alertname="BenchAlert", labels=labels, starts_at=now, event_ts=now)

        # warm-up, 3 s at the same rate: connections, the broker's JIT, the worker's first groups
        warm = [event(i, "warm") for i in range(int(args.rate * 3))]
        for ev in warm:
            producer.produce(alerts_topic, encode(ev), key=ev.fingerprint.encode())
            producer.poll(0)
            time.sleep(1 / args.rate)
        producer.flush(10)
        wait_for(hook, [e.fingerprint for e in warm], 30)

        # phase 1: steady rate
        n = int(args.rate * args.seconds)
        sent: dict[str, float] = {}
        t0 = time.perf_counter()
        for i in range(n):
            target = t0 + i / args.rate
            delay = target - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            ev = event(i, "lat")
            sent[ev.fingerprint] = time.time()
            producer.produce(alerts_topic, encode(ev), key=ev.fingerprint.encode())
            producer.poll(0)
        producer.flush(10)
        wait_for(hook, list(sent), 60)
        lat = [(hook.arrivals[fp] - ts) * 1000 for fp, ts in sent.items() if fp in hook.arrivals]
        lost = len(sent) - len(lat)

        # phase 2: burst throughput
        burst = [event(i, "burst") for i in range(args.burst)]
        b0 = time.time()
        for ev in burst:
            producer.produce(alerts_topic, encode(ev), key=ev.fingerprint.encode())
            producer.poll(0)
        producer.flush(30)
        wait_for(hook, [e.fingerprint for e in burst], 120)
        delivered = [hook.arrivals[e.fingerprint] for e in burst if e.fingerprint in hook.arrivals]
        burst_s = (max(delivered) - b0) if delivered else float("nan")
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
        if broker is not None:
            broker.stop()

    p50, p99 = percentile(lat, 0.50), percentile(lat, 0.99)
    print()
    print(f"notify latency at {args.rate:.0f} alerts/s for {args.seconds:.0f} s "
          f"({len(lat)} delivered, {lost} not delivered):")
    print(f"  p50 {p50:.1f} ms   p90 {percentile(lat, 0.9):.1f} ms   p99 {p99:.1f} ms   max {max(lat):.1f} ms   "
          f"target p99 < 500 ms: {'PASS' if p99 < 500 and not lost else 'FAIL'}")
    print(f"notify throughput: {len(delivered)}/{args.burst} alerts in {burst_s:.2f} s = "
          f"{len(delivered) / burst_s:.0f} alerts/s (one webhook POST per alert)")
    return 0 if p99 < 500 and not lost else 1


if __name__ == "__main__":
    sys.exit(main())
