"""Alert latency, side by side: gpuwatch against Prometheus + Alertmanager, and pages per fault.

One run, one machine:

1. **gpuwatch, metric breach**: a 1 Hz series (an agent's scrape, published as a
   metric batch the moment it is read) crosses a threshold rule without ``for``;
   the pipeline and ``gpuwatch notify --webhook`` (quick mode) page a local
   webhook. ``--trials`` trials idle, then as many while the pipeline drains a
   backlog of simulated metric batches at full rate.
2. **gpuwatch, XID in the kernel log**: the real-host agent (``gpuwatch agent``
   with fake NVML, its kernel-log source a FIFO standing in for /dev/kmsg) gets
   an XID line appended -> webhook. ``--xid-trials`` idle and under ingest; a
   fresh agent (a fresh node) per trial, since an XID keeps its node's incident
   open for 30 minutes and a second XID there is an update, not a page.
3. **Prometheus + Alertmanager** (Debian's, ``infra/prometheus/install.sh``): a
   small exporter serves the same series; 1 s scrape and evaluation, the same
   rule without ``for``, ``group_wait: 0s``, the same webhook.
4. **Stages**, from timestamps carried on the messages: gpuwatch sample taken ->
   published (agent) -> alert on the alerts topic (Kafka timestamp: pipeline) ->
   webhook (notifier); XID line written -> event on Kafka (agent) -> alert on
   Kafka -> webhook; Prometheus sample (scrape timestamp) -> rule evaluation
   (the alert's ``startsAt``) -> webhook (Prometheus' notifier + Alertmanager).
5. **Pages per fault**: every simulated fault kind, and a node whose every GPU
   falls off the bus, through the same pipeline and notifier; a page is a firing
   incident (fingerprint, start) the webhook had not been told about.

**Backlog.** Kafka keeps one partition in order, so a sample on a partition with
minutes of backlog waits those minutes whatever the worker does. The backlog
therefore goes to every metrics partition but the trial node's (partition 0):
the worker drains five partitions at full rate while the trial node's breach
and the XID nodes' events must get through at once.

"Breach" is the first sample that crosses the threshold, in both systems (the
scrape that read it); "change" is the moment the value changed at the source,
which adds the 1 Hz sampling phase (0-1 s) to both.

Targets (exit status 1 when one is missed): breach -> webhook p99 <= 0.5 s and
<= 0.5x Prometheus + Alertmanager; sample published -> webhook p99 <= 150 ms
idle, <= 300 ms under ingest; XID line -> webhook p99 <= 0.3 s idle and under
ingest; no page lost; exactly one page per fault.

    python bench/alert_latency.py [--trials 20] [--xid-trials 20] [--backlog-nodes 30 --backlog-ticks 1200]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents.simulator import FAULT_KINDS  # noqa: E402
from infra.kafka.broker import free_port  # noqa: E402
from pipelines.devstack import spawn  # noqa: E402
from schemas.alerts import AlertEvent  # noqa: E402
from schemas.codec import decode, encode  # noqa: E402
from schemas.metrics import MetricBatch, MetricSample  # noqa: E402

METRIC, THRESHOLD, NORMAL, BREACH = "bench_signal", 100.0, 50.0, 150.0
WARM_TICK, GPUS = 80, 4

#: The breach -> webhook p99 must be at most this and at most RATIO_TARGET x Prometheus + Alertmanager's.
BREACH_P99_S, RATIO_TARGET = 0.5, 0.5
SAMPLE_P99_IDLE_S, SAMPLE_P99_INGEST_S = 0.150, 0.300
XID_P99_S = 0.3
#: The trial node's metrics partition; the backlog goes to all the others.
TRIAL_PARTITION = 0
XID_LINE = "[ 8100.517039] NVRM: Xid (PCI:0000:{bus:02x}:00): 48, pid={pid}, name=python, An uncorrectable double bit error\n"


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] if xs else float("nan")


def stats(xs: list[float]) -> str:
    if not xs:
        return "no data"
    return f"p50 {percentile(xs, .5) * 1000:7.0f} ms  p99 {percentile(xs, .99) * 1000:7.0f} ms  " \
           f"max {max(xs) * 1000:7.0f} ms  (n={len(xs)})"


# -- the receiving end ------------------------------------------------------------------------------

class Webhook:
    """Records every POST: (path, arrival time, body)."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, float, dict]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                now = time.time()
                with outer.lock:
                    outer.posts.append((self.path, now, json.loads(body or b"{}")))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def first_firing(self, path: str, label: str, value: str, since: float = 0.0) -> tuple[float, dict] | None:
        """The first POST to ``path`` with a firing alert labelled ``label=value`` (that started at ``since``)."""
        with self.lock:
            for p, at, body in self.posts:
                if p != path:
                    continue
                for a in body.get("alerts", []):
                    if a.get("status") == "firing" and a.get("labels", {}).get(label) == value \
                            and (not since or abs(_rfc3339(a["startsAt"]) - since) <= 0.002):
                        return at, a
        return None

    def wait_firing(self, path: str, label: str, value: str, timeout: float,
                    since: float = 0.0) -> tuple[float, dict] | None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = self.first_firing(path, label, value, since)
            if got:
                return got
            time.sleep(0.005)
        return None

    def pages(self, path: str) -> dict[str, set[tuple[str, str]]]:
        """node -> firing incidents (fingerprint, start) told about."""
        out: dict[str, set[tuple[str, str]]] = {}
        with self.lock:
            for p, _, body in self.posts:
                for a in body.get("alerts", []) if p == path else ():
                    if a.get("status") == "firing":
                        out.setdefault(a["labels"].get("node", ""), set()).add((a["fingerprint"], a["startsAt"]))
        return out

    def last_post(self) -> float:
        with self.lock:
            return self.posts[-1][1] if self.posts else 0.0


class AlertTopicWatch:
    """Kafka timestamps of alert events on the alerts topic (when the pipeline published each decision)
    and of node events on the events topic (when the agent published each XID)."""

    def __init__(self, bootstrap: str, topic: str, events_topic: str) -> None:
        from confluent_kafka import Consumer

        self.first: dict[tuple[str, int], float] = {}  # (node, start in ms) -> Kafka timestamp of its first firing
        self.first_alert: dict[str, float] = {}  # node -> Kafka timestamp of its first firing alert
        self.first_event: dict[str, float] = {}  # node -> Kafka timestamp of its first node event
        self.events_topic = events_topic
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex[:8]}",
                                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
        self.consumer.subscribe([topic, events_topic])
        self.stop = False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self.stop:
            msg = self.consumer.poll(0.05)
            if msg is None or msg.error():
                continue
            at = msg.timestamp()[1] / 1000
            if msg.topic() == self.events_topic:
                self.first_event.setdefault((msg.key() or b"").decode(), at)
                continue
            try:
                ev = decode(msg.value(), AlertEvent)
            except Exception:
                continue
            if ev.status == "firing":
                node = ev.labels.get("node", "")
                self.first.setdefault((node, round(ev.starts_at * 1000)), at)
                self.first_alert.setdefault(node, at)

    def published(self, node: str, starts_at: float) -> float | None:
        return self.first.get((node, round(starts_at * 1000)))

    def close(self) -> None:
        self.stop = True
        time.sleep(0.1)
        self.consumer.close()


# -- gpuwatch side ----------------------------------------------------------------------------------

class OneHertzAgent:
    """A node agent's 1 Hz scrape of one series, published the moment it is read (producer not lingering)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        from confluent_kafka import Producer

        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": "all"})
        self.topic = topic

    def scrape(self, node: str, value: float) -> tuple[float, float]:
        """(sample taken, sample acknowledged by Kafka)."""
        ts = time.time()
        batch = MetricBatch(node=node, ts=ts, samples=[MetricSample(gpu=0, metric=METRIC, value=value)])
        self.producer.produce(self.topic, encode(batch), key=node.encode(), partition=TRIAL_PARTITION)
        self.producer.flush(10)
        return ts, time.time()


def gpuwatch_trials(agent: OneHertzAgent, hook: Webhook, alerts: AlertTopicWatch, node: str, n: int,
                    timeout: float) -> list[dict]:
    """Each trial: the node reads normal, then (the change at a random phase) breaching, at 1 Hz, and
    keeps reading breaching until the page comes (at most ``timeout``); then a normal reading resolves
    it. One node for all trials, as a real node would be (warm detectors)."""
    out = []
    for _ in range(n):
        t0 = time.time()
        agent.scrape(node, NORMAL)
        change = t0 + 1.0 + random.uniform(0.0, 1.0)  # the value changes between two scrapes
        tick = t0 + 1.0
        first = None
        while True:
            time.sleep(max(0.0, tick - time.time()))
            value = BREACH if time.time() >= change else NORMAL
            sample, published = agent.scrape(node, value)
            tick += 1.0
            if value == BREACH and first is None:
                first = (sample, published)
            if first is not None and (hook.wait_firing("/gw", "node", node, max(0.0, tick - time.time()),
                                                       since=first[0]) or time.time() - first[0] > timeout):
                break
        out.append({"node": node, "change": change, "sample": first[0], "published": first[1]})
        time.sleep(max(0.0, tick - time.time()))
        agent.scrape(node, NORMAL)  # resolves it
        time.sleep(0.5)
    return time_pages(out, hook, alerts, node, 0.0)


def time_pages(out: list[dict], hook: Webhook, alerts: AlertTopicWatch, node: str, late_s: float) -> list[dict]:
    """When each trial's page reached the webhook and its alert the alerts topic; pages later than
    the trial's wait are still timed, for ``late_s`` more."""
    deadline = time.time() + late_s
    while time.time() < deadline and not all(hook.first_firing("/gw", "node", node, t["sample"]) for t in out):
        time.sleep(0.2)
    time.sleep(0.5)  # the alerts topic watcher may read an event after the webhook got it
    for t in out:
        got = hook.first_firing("/gw", "node", node, t["sample"])
        t["webhook"] = got[0] if got else None
        t["alert"] = alerts.published(node, t["sample"])
    return out


def progress(name: str, trials: list[dict], start: str) -> None:
    """One line per phase while the bench runs (the figures come at the end)."""
    got = [t["webhook"] - t[start] for t in trials if t["webhook"] is not None and t.get(start) is not None]
    print(f"  {name}: {len(got)}/{len(trials)} paged; {stats(got)}", flush=True)


def pipeline_samples(web_port: int) -> float:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{web_port}/metrics", timeout=5).read().decode()
    except Exception:
        return float("nan")
    m = re.search(r"^gpuwatch_samples_received_total ([0-9.e+]+)$", text, re.M)
    return float(m.group(1)) if m else float("nan")


def backlog_child(args) -> int:
    """The backlog: a simulated cluster's scrapes published as fast as Kafka takes them, each node on a
    fixed metrics partition other than the trial node's. Prints a JSON summary last."""
    from confluent_kafka import Producer

    from agents.simulator import SimulatedCluster

    cluster = SimulatedCluster(nodes=args.backlog_nodes, gpus=8, seed=7, interval=1.0,
                               start_ts=time.time() - args.backlog_ticks)
    producer = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 20, "compression.type": "lz4",
                         "queue.buffering.max.messages": 200_000})
    others = [p for p in range(args.partitions) if p != TRIAL_PARTITION]
    partition = {n: others[i % len(others)] for i, n in enumerate(cluster.node_names)}
    samples = 0
    for _ in range(args.backlog_ticks):
        batches, _events = cluster.tick()
        for b in batches:
            while True:
                try:
                    producer.produce(args.topic, orjson.dumps(b), key=b["node"].encode(), partition=partition[b["node"]])
                    break
                except BufferError:
                    producer.poll(0.05)
            samples += len(b["samples"])
        producer.poll(0)
    left = producer.flush(120)
    print(json.dumps({"samples_published": samples if left == 0 else None}), flush=True)
    return 0


def xid_agent_child(args) -> int:
    """The real-host agent (``gpuwatch agent``'s own loop and delivery) with fake NVML in place of the driver."""
    from agents.collectors.nvml_fake import H200_COSTS, FakeGpu, FakeNvml
    from agents.main import run_agent

    nvml = FakeNvml([FakeGpu(i) for i in range(GPUS)], costs=H200_COSTS)
    ns = argparse.Namespace(config=args.xid_agent_child, bootstrap=args.bootstrap, once=False, dry_run=False,
                            metrics_port=None)
    return run_agent(ns, {"bootstrap.servers": args.bootstrap}, nvml=nvml)


class XidAgent:
    """One real-host agent (one node) whose kernel-log source is a FIFO the bench writes XID lines into."""

    def __init__(self, work: Path, bootstrap: str, prefix: str, node: str, env: dict) -> None:
        import yaml

        self.node = node
        d = work / node
        d.mkdir(parents=True)
        self.fifo = d / "kmsg.fifo"
        os.mkfifo(self.fifo)
        cfg = {"node": node, "interval_s": 1.0, "heartbeat_interval_s": 5.0, "state_dir": str(d / "state"),
               "log_level": "WARNING",
               "kafka": {"topics": {k: f"{prefix}.gpuwatch.{k}.v1" for k in ("metrics", "events", "heartbeats", "logs")}},
               "collectors": {"xid": {"source": str(self.fifo)}, "infiniband": {"enabled": False},
                              "jobsdk": {"enabled": False}, "logfiles": {"enabled": False}}}
        (d / "agent.yaml").write_text(yaml.safe_dump(cfg))
        self.log = open(d / "agent.log", "wb")
        self.proc = subprocess.Popen([sys.executable, __file__, "--xid-agent-child", str(d / "agent.yaml"),
                                      "--bootstrap", bootstrap], cwd=ROOT, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.fd: int | None = None

    def ready(self, timeout: float = 60.0) -> bool:
        """True once the agent reads its kernel-log source (it holds the FIFO open for reading)."""
        deadline = time.time() + timeout
        while time.time() < deadline and self.proc.poll() is None:
            try:
                self.fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
                time.sleep(0.5)  # the reader thread starts right after the source opens
                return True
            except OSError:
                time.sleep(0.05)
        return False

    def write_xid(self) -> float:
        line = XID_LINE.format(bus=random.randrange(1, 255), pid=random.randrange(1000, 99999))
        written = time.time()
        os.write(self.fd, line.encode())
        return written

    def stop(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


#: How long an XID agent runs after it is ready before its line is written.
XID_SETTLE_S = 1.5


def xid_trials(work: Path, bootstrap: str, prefix: str, env: dict, hook: Webhook, alerts: AlertTopicWatch,
               phase: str, n: int, timeout: float) -> list[dict]:
    """Each trial: a fresh agent gets one XID line once it has started; time to its page.

    The next agent starts only after this trial: started beside it (as before), a Python process's
    start-up (about a CPU-second) competed with the worker for this two-core machine's CPU in every
    trial, which a kernel-log line on a running host does not meet.
    """
    out = []
    for i in range(n):
        agent = XidAgent(work, bootstrap, prefix, f"xid-{phase}-{i}", env)
        if agent.ready():
            time.sleep(XID_SETTLE_S)  # past its first scrape and publishes
        else:
            agent.stop()
            out.append({"node": agent.node, "written": None, "webhook": None})
            continue
        written = agent.write_xid()
        got = hook.wait_firing("/gw", "node", agent.node, timeout)
        out.append({"node": agent.node, "written": written, "webhook": got[0] if got else None})
        time.sleep(0.3)
        agent.stop()
    time.sleep(0.5)  # the topic watcher may read a message after the webhook got its page
    for t in out:
        t["event"] = alerts.first_event.get(t["node"])
        t["alert"] = alerts.first_alert.get(t["node"])
    return out


# -- Prometheus + Alertmanager side -----------------------------------------------------------------

class Exporter:
    """A /metrics endpoint with the one series; the bench sets its value."""

    def __init__(self) -> None:
        self.series: dict[str, float] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                body = "".join(f'{METRIC}{{trial="{t}"}} {v}\n' for t, v in list(outer.series.items())).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"


def _get_json(url: str) -> dict:
    return json.loads(urllib.request.urlopen(url, timeout=5).read())


def _wait_http(url: str, timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return True
        except Exception:
            time.sleep(0.2)
    return False


class PromStack:
    def __init__(self, work: Path, hook: Webhook, exporter: Exporter) -> None:
        self.work = work
        self.prom_port, self.am_port = free_port(), free_port()
        (work / "rules.yml").write_text(
            "groups:\n- name: bench\n  rules:\n"
            f"  - alert: BenchBreach\n    expr: {METRIC} > {THRESHOLD:g}\n")
        (work / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s, scrape_timeout: 900ms}\n"
            "rule_files: [rules.yml]\n"
            f"alerting: {{alertmanagers: [{{static_configs: [{{targets: ['127.0.0.1:{self.am_port}']}}]}}]}}\n"
            f"scrape_configs: [{{job_name: bench, static_configs: [{{targets: ['{exporter.target}']}}]}}]\n")
        (work / "alertmanager.yml").write_text(
            "route: {receiver: hook, group_by: [alertname, trial], group_wait: 0s, group_interval: 1s, "
            "repeat_interval: 4h}\n"
            f"receivers: [{{name: hook, webhook_configs: [{{url: '{hook.url('/prom')}', send_resolved: false}}]}}]\n")
        log = open(work / "prom.log", "wb")
        self.am = subprocess.Popen(
            ["prometheus-alertmanager", f"--config.file={work / 'alertmanager.yml'}",
             f"--storage.path={work / 'am'}", f"--web.listen-address=127.0.0.1:{self.am_port}",
             "--cluster.listen-address="], stdout=log, stderr=subprocess.STDOUT)
        self.prom = subprocess.Popen(
            ["prometheus", f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.prom_port}"], stdout=log, stderr=subprocess.STDOUT)

    def ready(self) -> bool:
        return (_wait_http(f"http://127.0.0.1:{self.am_port}/-/ready", 60)
                and _wait_http(f"http://127.0.0.1:{self.prom_port}/-/ready", 60))

    def samples(self, trial: str) -> list[tuple[float, float]]:
        q = urllib.request.quote(f'{METRIC}{{trial="{trial}"}}[15m]')
        doc = _get_json(f"http://127.0.0.1:{self.prom_port}/api/v1/query?query={q}")
        result = doc["data"]["result"]
        return [(float(t), float(v)) for t, v in result[0]["values"]] if result else []

    def close(self) -> None:
        for p in (self.prom, self.am):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def _rfc3339(s: str) -> float:
    from datetime import datetime

    s = re.sub(r"(\.\d{6})\d+", r"\1", s.replace("Z", "+00:00"))
    return datetime.fromisoformat(s).timestamp()


def prom_trials(stack: PromStack, exporter: Exporter, hook: Webhook, n: int, timeout: float) -> list[dict]:
    out = []
    for i in range(n):
        trial = str(i)
        exporter.series = {trial: NORMAL}
        time.sleep(2.0 + random.uniform(0.0, 1.0))  # at least one normal scrape, then a random phase
        change = time.time()
        exporter.series = {trial: BREACH}
        got = hook.wait_firing("/prom", "trial", trial, timeout)
        out.append({"trial": trial, "change": change, "webhook": got[0] if got else None,
                    "evaluated": _rfc3339(got[1]["startsAt"]) if got else None})
        exporter.series = {}
        time.sleep(0.5)
    for t in out:
        first = [ts for ts, v in stack.samples(t["trial"]) if v > THRESHOLD]
        t["sample"] = first[0] if first else None
    return out


# -- pages per fault --------------------------------------------------------------------------------

def fault_specs() -> dict[str, list[str]]:
    """fault kind -> its --fault specs, one node each; plus a node whose every GPU falls off the bus."""
    specs = {}
    for n, kind in enumerate(FAULT_KINDS):
        if kind == "memory_leak":
            specs[kind] = [f"{kind}@node-{n}/{n % GPUS}:20+150"]
        elif kind == "xid79":
            specs[kind] = [f"{kind}@node-{n}/{n % GPUS}:{WARM_TICK}"]
        else:
            specs[kind] = [f"{kind}@node-{n}/{n % GPUS}:{WARM_TICK}+40"]
    n = len(FAULT_KINDS)
    specs["every GPU of a node off the bus"] = [f"xid79@node-{n}/{g}:{WARM_TICK}" for g in range(GPUS)]
    return specs


def pages_per_fault(env: dict, hook: Webhook, quiet_s: float, max_wait_s: float) -> dict[str, int]:
    specs = fault_specs()
    args = [sys.executable, "-m", "pipelines.cli", "agent", "--simulate", str(len(specs)), "--gpus", str(GPUS),
            "--ticks", "220"]
    for ss in specs.values():
        for s in ss:
            args += ["--fault", s]
    r = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"simulation failed: {r.stderr[-2000:]}")
    deadline = time.time() + max_wait_s
    while time.time() < deadline and time.time() - max(hook.last_post(), time.time() - quiet_s - 1) < quiet_s:
        time.sleep(0.5)
    pages = hook.pages("/gw")
    node_of = {kind: ss[0].split("@")[1].split("/")[0] for kind, ss in specs.items()}
    return {kind: len(pages.get(node, ())) for kind, node in node_of.items()}


# -- main -------------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", default=os.environ.get("GPUWATCH_BENCH_BOOTSTRAP"))
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--xid-trials", type=int, default=20)
    ap.add_argument("--backlog-nodes", type=int, default=30)
    ap.add_argument("--backlog-ticks", type=int, default=1200)
    ap.add_argument("--timeout", type=float, default=15.0, help="seconds an idle trial keeps breaching, waiting for its page")
    ap.add_argument("--ingest-timeout", type=float, default=30.0, help="the same, under ingest")
    ap.add_argument("--skip-faults", action="store_true")
    ap.add_argument("--skip-prom", action="store_true")
    ap.add_argument("--backlog-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--xid-agent-child", help=argparse.SUPPRESS)
    ap.add_argument("--topic", help=argparse.SUPPRESS)
    ap.add_argument("--partitions", type=int, default=6, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.backlog_child:
        return backlog_child(args)
    if args.xid_agent_child:
        return xid_agent_child(args)

    work = Path(tempfile.mkdtemp(prefix="gpuwatch-alert-latency-"))
    broker = None
    if not args.bootstrap:
        from infra.kafka.broker import LocalKafka
        print("starting a local Kafka broker...", flush=True)
        broker = LocalKafka(work / "kafka", port=free_port(), controller_port=free_port())
        broker.start(timeout=180)
        args.bootstrap = broker.bootstrap
    prefix = f"lat{uuid.uuid4().hex[:6]}"
    rules = work / "rules.yaml"
    default_rules = resources.files("pipelines.rules").joinpath("default.yaml").read_text()
    rules.write_text(default_rules.rstrip() + "\n" + (
        "  - name: bench\n    rules:\n"
        f"      - alert: BenchBreach\n        metric: {METRIC}\n        op: \">\"\n        threshold: {THRESHOLD:g}\n"
        "        severity: warning\n        annotations: {summary: \"bench series over the threshold\"}\n"))
    web_port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "GPUWATCH_HOME": str(work / "home"),
           "GPUWATCH_KAFKA_BOOTSTRAP": args.bootstrap, "GPUWATCH_TOPIC_PREFIX": prefix,
           "GPUWATCH_APP_ID": f"{prefix}-pipeline", "GPUWATCH_WEB_PORT": str(web_port),
           "GPUWATCH_NOTIFY_LISTEN": f"127.0.0.1:{free_port()}", "GPUWATCH_LOG_LEVEL": "warning",
           "GPUWATCH_RULES_FILE": str(rules)}
    hook, exporter = Webhook(), Exporter()
    procs, prom, alerts, backlog = [], None, None, None
    results: dict = {"load_before": os.getloadavg()}
    metrics_topic = f"{prefix}.gpuwatch.metrics.v1"
    try:
        pipeline = spawn("pipeline", ["pipeline"], env, work)
        procs.append(pipeline)
        pipeline.wait_for_line("pipeline: ready", timeout=180)
        notifier = spawn("notify", ["notify", "--webhook", hook.url("/gw")], env, work)
        procs.append(notifier)
        notifier.wait_for_line("notify: ready", timeout=120)
        alerts = AlertTopicWatch(args.bootstrap, f"{prefix}.gpuwatch.alerts.v1", f"{prefix}.gpuwatch.events.v1")
        agent = OneHertzAgent(args.bootstrap, metrics_topic)
        print("gpuwatch: warm-up trial, then idle trials...", flush=True)
        gpuwatch_trials(agent, hook, alerts, "bench-node", 2, 60.0)  # warm-up: the node's detectors, connections
        results["idle"] = gpuwatch_trials(agent, hook, alerts, "bench-node", args.trials, args.timeout)
        progress("breach idle, published -> webhook", results["idle"], "published")
        print("gpuwatch: XID trials, idle...", flush=True)
        results["xid_idle"] = xid_trials(work / "xid", args.bootstrap, prefix, env, hook, alerts, "idle",
                                         args.xid_trials, args.timeout)
        progress("XID idle, line -> webhook", results["xid_idle"], "written")

        if args.skip_prom:
            pass
        elif shutil.which("prometheus") and shutil.which("prometheus-alertmanager"):
            print("Prometheus + Alertmanager trials...", flush=True)
            (work / "prom").mkdir()
            prom = PromStack(work / "prom", hook, exporter)
            if prom.ready():
                results["prom"] = prom_trials(prom, exporter, hook, args.trials, args.timeout)
        else:
            print("prometheus / prometheus-alertmanager not installed: run infra/prometheus/install.sh",
                  file=sys.stderr)

        if not args.skip_faults:
            print("pages per fault...", flush=True)
            results["faults"] = pages_per_fault(env, hook, quiet_s=10.0, max_wait_s=120.0)

        print(f"backlog: {args.backlog_nodes} nodes x 8 GPUs x {args.backlog_ticks} ticks on every metrics partition "
              f"but {TRIAL_PARTITION}, then trials...", flush=True)
        before = pipeline_samples(web_port)
        backlog = subprocess.Popen(
            [sys.executable, __file__, "--backlog-child", "--bootstrap", args.bootstrap, "--topic", metrics_topic,
             "--backlog-nodes", str(args.backlog_nodes), "--backlog-ticks", str(args.backlog_ticks)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=open(work / "backlog.log", "wb"), text=True)
        deadline = time.time() + 120  # trials start once the pipeline is draining the backlog
        while time.time() < deadline and not pipeline_samples(web_port) > before + 20_000:
            time.sleep(0.05)
        t_start, s_start = time.time(), pipeline_samples(web_port)
        results["load_ingest"] = os.getloadavg()
        ingest = gpuwatch_trials(agent, hook, alerts, "bench-node", args.trials, args.ingest_timeout)
        progress("breach ingest, published -> webhook", ingest, "published")
        results["xid_ingest"] = xid_trials(work / "xid", args.bootstrap, prefix, env, hook, alerts, "ingest",
                                           args.xid_trials, args.ingest_timeout)
        progress("XID ingest, line -> webhook", results["xid_ingest"], "written")
        t_end, s_end = time.time(), pipeline_samples(web_port)
        results["ingest"] = time_pages(ingest, hook, alerts, "bench-node", late_s=120.0)
        backlog.wait(600)
        out = backlog.stdout.read().strip().splitlines()
        summary = json.loads(out[-1]) if out else {}
        if not out:
            print("backlog producer failed: " + (work / "backlog.log").read_text()[-2000:], file=sys.stderr)
        backlog = None
        results["ingest_rate"] = (s_end - s_start) / max(t_end - t_start, 1e-9)
        results["backlog_total"] = summary.get("samples_published") or 0
        results["backlog_left_at_end"] = before + results["backlog_total"] - s_end
    finally:
        if backlog is not None:
            backlog.kill()
        if alerts is not None:
            alerts.close()
        if prom is not None:
            prom.close()
        for p in reversed(procs):
            p.stop()
        if broker is not None:
            broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    return report(results, args)


def report(r: dict, args) -> int:
    """Stages and context first; the figures, the ratios, pages per fault and the verdict last."""
    misses: list[str] = []
    inf = float("inf")

    def gw(trials: list[dict]) -> dict[str, list[float]]:
        ok = [t for t in trials if t["webhook"] is not None]
        lost = [inf] * (len(trials) - len(ok))  # a page that never came counts against every percentile
        return {
            "change": [t["webhook"] - t["change"] for t in ok] + lost,
            "breach": [t["webhook"] - t["sample"] for t in ok] + lost,
            "published": [t["webhook"] - t["published"] for t in ok] + lost,
            "agent": [t["published"] - t["sample"] for t in ok],
            "pipeline": [t["alert"] - t["published"] for t in ok if t["alert"]],
            "notifier": [t["webhook"] - t["alert"] for t in ok if t["alert"]],
        }

    def xid(trials: list[dict]) -> dict[str, list[float]]:
        ok = [t for t in trials if t["webhook"] is not None]
        lost = [inf] * (len(trials) - len(ok))
        return {
            "webhook": [t["webhook"] - t["written"] for t in ok] + lost,
            "agent": [t["event"] - t["written"] for t in ok if t.get("event")],
            "pipeline": [t["alert"] - t["event"] for t in ok if t.get("event") and t.get("alert")],
            "notifier": [t["webhook"] - t["alert"] for t in ok if t.get("alert")],
        }

    idle, ingest = gw(r.get("idle", [])), gw(r.get("ingest", []))
    xid_idle, xid_ingest = xid(r.get("xid_idle", [])), xid(r.get("xid_ingest", []))
    prom_trials_ = [t for t in r.get("prom", []) if t["webhook"] is not None and t["sample"] is not None]
    prom_lost = [inf] * (len(r.get("prom", [])) - len(prom_trials_))
    prom = {
        "change": [t["webhook"] - t["change"] for t in prom_trials_] + prom_lost,
        "breach": [t["webhook"] - t["sample"] for t in prom_trials_] + prom_lost,
        "scrape": [t["sample"] - t["change"] for t in prom_trials_],
        "evaluate": [t["evaluated"] - t["sample"] for t in prom_trials_],
        "alertmanager": [t["webhook"] - t["evaluated"] for t in prom_trials_],
    }
    print()
    print("=" * 100)
    print("stages (p50 / p99 / max):")
    for phase, d in (("idle", idle), ("ingest", ingest)):
        print(f"  breach {phase:6s}  agent    " + stats(d["agent"]) + "   (sample taken -> acked by Kafka)")
        print(f"                pipeline " + stats(d["pipeline"]) + "   (published -> alert on Kafka)")
        print(f"                notifier " + stats(d["notifier"]) + "   (alert on Kafka -> webhook)")
    for phase, d in (("idle", xid_idle), ("ingest", xid_ingest)):
        print(f"  XID    {phase:6s}  agent    " + stats(d["agent"]) + "   (line written -> event on Kafka)")
        print(f"                pipeline " + stats(d["pipeline"]) + "   (event on Kafka -> alert on Kafka)")
        print(f"                notifier " + stats(d["notifier"]) + "   (alert on Kafka -> webhook)")
    if prom_trials_:
        print("  Prom+AM        scrape   " + stats(prom["scrape"]) + "   (change -> scraped sample)")
        print("                evaluate " + stats(prom["evaluate"]) + "   (sample -> rule evaluation)")
        print("                notify   " + stats(prom["alertmanager"]) + "   (evaluation -> webhook)")
    if "ingest_rate" in r:
        left = max(0, r["backlog_left_at_end"])
        print(f"ingest during the trials: {r['ingest_rate']:,.0f} samples/s; backlog {r['backlog_total']:,} samples "
              f"on {args.partitions - 1} of {args.partitions} metrics partitions, {left:,.0f} still unread when the "
              "last trial ended" + ("" if left else "  (ran out during the trials: raise --backlog-ticks)"))
        if not left:
            misses.append("the backlog lasted through the ingest trials")
    print("machine load (1/5/15 min): before " + " ".join(f"{x:.1f}" for x in r["load_before"])
          + ("; at the start of ingest " + " ".join(f"{x:.1f}" for x in r["load_ingest"]) if "load_ingest" in r else "")
          + f"; {os.cpu_count()} cores")
    print("-" * 100)

    def check(name: str, ok: bool) -> None:
        if not ok:
            misses.append(name)

    p99 = lambda xs: percentile(xs, .99)  # noqa: E731
    rows = [
        ("breach -> webhook", "gpuwatch idle", idle["breach"], f"p99 <= {BREACH_P99_S} s, <= {RATIO_TARGET}x Prom+AM"),
        ("", "gpuwatch ingest", ingest["breach"], f"p99 <= {BREACH_P99_S} s, <= {RATIO_TARGET}x Prom+AM"),
        ("", "Prom+AM", prom["breach"], "reference"),
        ("change -> webhook", "gpuwatch idle", idle["change"], "(adds the 1 Hz sampling phase)"),
        ("", "gpuwatch ingest", ingest["change"], ""),
        ("", "Prom+AM", prom["change"], ""),
        ("sample published -> webhook", "gpuwatch idle", idle["published"], f"p99 <= {SAMPLE_P99_IDLE_S * 1000:.0f} ms"),
        ("", "gpuwatch ingest", ingest["published"], f"p99 <= {SAMPLE_P99_INGEST_S * 1000:.0f} ms"),
        ("XID line -> webhook", "gpuwatch idle", xid_idle["webhook"], f"p99 <= {XID_P99_S} s"),
        ("", "gpuwatch ingest", xid_ingest["webhook"], f"p99 <= {XID_P99_S} s"),
    ]
    for what, who, xs, target in rows:
        if what:
            print(what + ":")
        print(f"  {who:16s} {stats(xs)}   {target}")
    for name, trials in (("breach idle", r.get("idle", [])), ("breach ingest", r.get("ingest", [])),
                         ("XID idle", r.get("xid_idle", [])), ("XID ingest", r.get("xid_ingest", []))):
        lost = sum(t["webhook"] is None for t in trials)
        print(f"pages lost, {name}: {lost} of {len(trials)}")
        check(f"no page lost ({name})", not lost and bool(trials))
    if prom["breach"]:
        for phase, d in (("idle", idle), ("ingest", ingest)):
            ratio = p99(d["breach"]) / p99(prom["breach"])
            rc = p99(d["change"]) / p99(prom["change"])
            print(f"ratio gpuwatch {phase} / Prom+AM, p99: breach -> webhook {ratio:.2f}x, "
                  f"change -> webhook {rc:.2f}x   (target <= {RATIO_TARGET}x)")
            check(f"breach->webhook p99 ratio ({phase}) <= {RATIO_TARGET}x", ratio <= RATIO_TARGET)
    else:
        check("Prometheus + Alertmanager reference ran", False)
    for phase, d in (("idle", idle), ("ingest", ingest)):
        check(f"breach->webhook p99 ({phase}) <= {BREACH_P99_S} s", bool(d["breach"]) and p99(d["breach"]) <= BREACH_P99_S)
    check("sample->webhook p99 idle <= 150 ms", bool(idle["published"]) and p99(idle["published"]) <= SAMPLE_P99_IDLE_S)
    check("sample->webhook p99 ingest <= 300 ms",
          bool(ingest["published"]) and p99(ingest["published"]) <= SAMPLE_P99_INGEST_S)
    for phase, d in (("idle", xid_idle), ("ingest", xid_ingest)):
        check(f"XID->webhook p99 ({phase}) <= {XID_P99_S} s", bool(d["webhook"]) and p99(d["webhook"]) <= XID_P99_S)
    faults = r.get("faults")
    if faults is not None:
        print("pages per injected fault: " + ", ".join(f"{k} {v}" for k, v in faults.items()))
        check("exactly one page per fault", all(v == 1 for v in faults.values()))
    else:
        check("pages per fault measured", False)
    print("MISSED: " + "; ".join(misses) if misses else "all targets met")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
