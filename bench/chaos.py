"""Chaos: kill, cut off and refuse the real parts, then count what was lost or doubled.

Three scenarios on a real local Kafka broker, each with real gpuwatch processes:

1. **pipeline SIGKILLed 5 times** at random moments while it drains a backlog of
   simulated metric batches; after the last restart every sample must be in
   ``metrics_raw`` exactly once (counted by (node, gpu, metric, ts)).
2. **broker stopped 60 s** while the real-host agent (``gpuwatch agent --config``:
   host and job collectors, no GPU needed) publishes every second; every metric
   batch it made during the outage must arrive, in order per node (its ``seq``
   numbers, with no gap and no step back).
3. **webhook receiver in trouble**: it answers 500 five times, then hangs 30 s,
   then is down for 60 s, and the notifier is SIGKILLed mid-retry and
   restarted; every alert must be delivered, and each notification's
   ``Idempotency-Key`` accepted exactly once (raw repeats, which the key lets a
   receiver drop, are reported separately).

Prints published, stored, lost and duplicated per scenario, last, and exits
non-zero on any loss or duplicate.

    .venv/bin/python bench/chaos.py [--backlog-ticks 150] [--outage-s 60]
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import orjson
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infra.kafka.broker import LocalKafka, free_port  # noqa: E402
from pipelines.devstack import spawn, wait_for  # noqa: E402
from schemas.topics import TOPICS, TopicSpec  # noqa: E402


def _env(bootstrap: str, prefix: str, home: Path, **extra: str) -> dict[str, str]:
    return {"GPUWATCH_KAFKA_BOOTSTRAP": bootstrap, "GPUWATCH_TOPIC_PREFIX": prefix, "GPUWATCH_HOME": str(home),
            "GPUWATCH_APP_ID": f"{prefix}-chaos", "GPUWATCH_LOG_LEVEL": "warning", **extra}


def _topics(bootstrap: str, prefix: str) -> None:
    from pipelines.topics_admin import ensure_topics

    ensure_topics(bootstrap, [TopicSpec(f"{prefix}.{t.name}", t.partitions, t.key, t.purpose, t.config)
                              for t in TOPICS.values()])


# ---------------------------------------------------------------- 1. pipeline SIGKILLed under load

def pipeline_kills(bootstrap: str, home: Path, ticks: int, kills: int, rng: random.Random) -> dict:
    prefix = f"k{uuid.uuid4().hex[:8]}"
    _topics(bootstrap, prefix)
    sim = spawn("simulate", ["agent", "--simulate", "8", "--gpus", "8", "--ticks", str(ticks)],
                _env(bootstrap, prefix, home), home)
    if sim.popen.wait(900) != 0:
        raise SystemExit(f"simulator failed:\n{sim.output()[-2000:]}")
    published = int(orjson.loads(sim.output().strip().splitlines()[-1])["samples_published"])
    port = free_port()
    env = _env(bootstrap, prefix, home, GPUWATCH_WEB_PORT=str(port))

    def stored() -> tuple[int, int]:
        r = httpx.post(f"http://127.0.0.1:{port}/query", timeout=60, json={"sql": (
            "SELECT count(), uniqExact(node, gpu, metric, ts) FROM gpuwatch.metrics_raw")})
        rows = r.json()["rows"][0]
        return int(rows[0]), int(rows[1])

    for k in range(kills):
        child = spawn("pipeline", ["pipeline"], env, home)
        child.wait_for_line("pipeline: ready", timeout=180)
        time.sleep(rng.uniform(1.0, 6.0))
        child.kill()
        print(f"  pipeline SIGKILLed ({k + 1}/{kills})", flush=True)
    child = spawn("pipeline", ["pipeline"], env, home)
    try:
        child.wait_for_line("pipeline: ready", timeout=180)
        wait_for(lambda: _safe(stored, (0, 0))[1] >= published, timeout=1800, interval=2,
                 what="every sample stored after the kills")
        time.sleep(3)  # anything still in flight would show as a duplicate now
        rows, distinct = stored()
    finally:
        child.stop(20)
    return {"published": published, "stored": distinct, "lost": published - distinct, "duplicated": rows - distinct}


def _safe(fn, default):
    try:
        return fn()
    except (httpx.HTTPError, ValueError, KeyError, IndexError):
        return default


# ---------------------------------------------------------------- 2. broker down while the real agent publishes

def broker_outage(broker: LocalKafka, home: Path, outage_s: float) -> dict:
    from confluent_kafka import Consumer

    home.mkdir(parents=True, exist_ok=True)
    prefix = f"o{uuid.uuid4().hex[:8]}"
    _topics(broker.bootstrap, prefix)
    topics = {k: f"{prefix}.gpuwatch.{k}.v1" for k in ("metrics", "events", "heartbeats", "logs")}
    cfg = {"node": "chaos-node-1", "interval_s": 1.0, "heartbeat_interval_s": 5, "state_dir": str(home / "agent"),
           "kafka": {"bootstrap": broker.bootstrap, "topics": topics, "delivery_timeout_s": 5},
           "spool": {"retry_s": 2},
           "collectors": {"nvml": {"enabled": False}, "jobsdk": {"listen": "127.0.0.1:0"},
                          "xid": {"enabled": False}, "logfiles": {"enabled": False}}}
    (home / "agent.yaml").write_text(yaml.safe_dump(cfg))
    agent = spawn("agent", ["agent", "--config", str(home / "agent.yaml")], {"GPUWATCH_HOME": str(home)}, home)
    try:
        time.sleep(8)
        broker.stop()
        down_at = time.time()
        print(f"  broker stopped for {outage_s:.0f} s", flush=True)
        time.sleep(outage_s)
        broker.start(timeout=180)
        up_at = time.time()
        time.sleep(25)  # the spool drains (retry every 2 s)
    finally:
        agent.stop(30)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"chaos-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topics["metrics"]])
    seqs, deadline, made_in_outage = [], time.monotonic() + 60, 0
    idle = 0
    while time.monotonic() < deadline and idle < 10:
        msgs = consumer.consume(500, 1.0)
        idle = 0 if msgs else idle + 1
        for m in msgs:
            if m.error():
                continue
            doc = orjson.loads(m.value())
            seqs.append(int(doc["seq"]))
            made_in_outage += down_at <= doc["ts"] <= up_at
    consumer.close()
    expected = set(range(min(seqs), max(seqs) + 1)) if seqs else set()
    lost = len(expected - set(seqs))
    out_of_order = sum(1 for a, b in zip(seqs, seqs[1:]) if b <= a)
    return {"published": len(expected), "stored": len(set(seqs)), "lost": lost,
            "duplicated": len(seqs) - len(set(seqs)), "in_outage": made_in_outage, "out_of_order": out_of_order}


# ---------------------------------------------------------------- 3. receiver in trouble, notifier killed mid-retry

class TroubledReceiver:
    """A webhook that answers 500 five times, then hangs every request for ``hang_s``, then is down for
    ``down_s`` (nothing listens), then answers 200 and records each request's idempotency key."""

    def __init__(self, hang_s: float, down_s: float) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.hang_s, self.down_s = hang_s, down_s
        self.accepted: list[tuple[str, list[str]]] = []  # (idempotency key, fingerprints)
        self.failures = 5
        self.hang_until: float | None = None
        self.down_since: float | None = None
        self.lock = threading.Lock()
        self._serve()

    def _serve(self) -> None:
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with rec.lock:
                    fail = rec.failures > 0
                    rec.failures -= fail
                    if not fail and rec.hang_until is None:
                        rec.hang_until = time.monotonic() + rec.hang_s
                        threading.Timer(rec.hang_s, rec._go_down).start()
                if fail:
                    self.send_response(500)
                    self.end_headers()
                    return
                wait = rec.hang_until - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                    self.close_connection = True
                    return  # no answer: the notifier times out and retries
                doc = orjson.loads(body)
                with rec.lock:
                    rec.accepted.append((self.headers.get("Idempotency-Key", ""),
                                         [a["fingerprint"] for a in doc.get("alerts", [])]))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _go_down(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.down_since = time.monotonic()
        time.sleep(self.down_s)
        for _ in range(50):
            try:
                self._serve()
                return
            except OSError:
                time.sleep(0.2)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def receiver_trouble(bootstrap: str, home: Path, alerts: int, hang_s: float, down_s: float) -> dict:
    from confluent_kafka import Producer

    from schemas.alerts import AlertEvent
    from schemas.codec import encode

    prefix = f"w{uuid.uuid4().hex[:8]}"
    _topics(bootstrap, prefix)
    rec = TroubledReceiver(hang_s, down_s)
    env = _env(bootstrap, prefix, home, GPUWATCH_NOTIFY_LISTEN=f"127.0.0.1:{free_port()}")
    args = ["notify", "--webhook", rec.url, "--group-wait", "0s", "--group-interval", "1s"]
    notify = spawn("notify", args, env, home)
    producer = Producer({"bootstrap.servers": bootstrap})
    fps = []
    now = time.time()
    for i in range(alerts):
        ev = AlertEvent(fingerprint=f"{i:016x}", status="firing", alertname="ChaosTest", severity="critical",
                        labels={"node": f"node-{i}", "gpu": "0"}, annotations={"summary": f"chaos {i}"},
                        starts_at=now, event_ts=now)
        fps.append(ev.fingerprint)
        producer.produce(f"{prefix}.gpuwatch.alerts.v1", key=ev.fingerprint.encode(), value=encode(ev))
    producer.flush(30)
    try:
        wait_for(lambda: rec.down_since, timeout=300, interval=0.5,
                 what="the receiver to go down after its failures and hang")
        time.sleep(min(10.0, down_s / 3))
        notify.kill()  # mid-retry: the receiver is down
        print("  notifier SIGKILLed mid-retry; restarting", flush=True)
        notify = spawn("notify", args, env, home)
        delivered = lambda: {fp for _, f in rec.accepted for fp in f}  # noqa: E731
        wait_for(lambda: set(fps) <= delivered(), timeout=down_s + 300, interval=1, what="every alert delivered")
        time.sleep(5)
    finally:
        notify.stop(20)
        rec.close()
    keys = [k for k, _ in rec.accepted]
    got = {fp for _, f in rec.accepted for fp in f}
    keys_of: dict[str, set[str]] = {}
    for key, fp_list in rec.accepted:
        for fp in fp_list:
            keys_of.setdefault(fp, set()).add(key or uuid.uuid4().hex)  # a request without a key counts alone
    # a duplicate: one alert in two different notifications (a receiver deduplicating by key pages twice)
    return {"published": alerts, "stored": len(got & set(fps)), "lost": len(set(fps) - got),
            "duplicated": sum(len(k) - 1 for k in keys_of.values()),
            "raw_repeats": len(keys) - len(set(keys)), "requests": len(keys)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backlog-ticks", type=int, default=150)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--outage-s", type=float, default=60)
    ap.add_argument("--hang-s", type=float, default=30)
    ap.add_argument("--down-s", type=float, default=60)
    ap.add_argument("--alerts", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", default="123", help="which scenarios to run (default all: 123)")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rng = random.Random(args.seed)
    results = {}
    with tempfile.TemporaryDirectory(prefix="gpuwatch-chaos-") as tmp:
        home = Path(tmp)
        broker = LocalKafka(home / "kafka", port=free_port(), controller_port=free_port())
        broker.start(timeout=180)
        try:
            if "1" in args.only:
                print("1. pipeline SIGKILLed under load", flush=True)
                results["pipeline SIGKILL x%d" % args.kills] = pipeline_kills(
                    broker.bootstrap, home / "kills", args.backlog_ticks, args.kills, rng)
                print(f"  {results['pipeline SIGKILL x%d' % args.kills]}", flush=True)
            if "2" in args.only:
                print("2. broker stopped while the agent publishes", flush=True)
                name = f"broker down {args.outage_s:.0f} s"
                results[name] = broker_outage(broker, home / "outage", args.outage_s)
                print(f"  {results[name]}", flush=True)
            if "3" in args.only:
                print("3. webhook 500 x5, hang, down; notifier SIGKILLed mid-retry", flush=True)
                results["receiver trouble"] = receiver_trouble(broker.bootstrap, home / "notify", args.alerts,
                                                               args.hang_s, args.down_s)
        finally:
            broker.stop()
    print()
    print(f"{'scenario':28} {'published':>10} {'stored':>10} {'lost':>6} {'duplicated':>10}  notes")
    failed = False
    for name, r in results.items():
        notes = ", ".join(f"{k} {v}" for k, v in r.items() if k not in ("published", "stored", "lost", "duplicated"))
        print(f"{name:28} {r['published']:>10,} {r['stored']:>10,} {r['lost']:>6} {r['duplicated']:>10}  {notes}")
        failed |= bool(r["lost"] or r["duplicated"] or r.get("out_of_order"))
    if failed:
        print("MISSED: a scenario lost, duplicated or reordered something")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
