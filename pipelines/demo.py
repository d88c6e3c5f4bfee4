"""``gpuwatch demo``: the whole pipeline, end to end, on this machine.

Starts a real Kafka broker (fetched from Maven Central once), the pipeline
(Faust + embedded ClickHouse), the notifier and a local webhook; simulates a
4-node x 8-GPU cluster with one GPU running away thermally; then shows the
alert as the webhook received it and the ClickHouse rows behind it. Everything
it started is stopped on the way out. Exit 0 only if the alert was delivered.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import httpx
import orjson
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from infra.kafka.broker import BrokerError, LocalKafka, free_port
from pipelines.devstack import WebhookRecorder, spawn, wait_for

FAULT = "thermal_runaway@node-2/3:30+40"
NODES, GPUS, TICKS = 4, 8, 260


class Demo:
    def __init__(self, home: Path, console: Console) -> None:
        self.home = home
        self.console = console
        self.web_port = free_port()
        self.notify_port = free_port()
        self.kafka = LocalKafka(home / "kafka", port=free_port(), controller_port=free_port())
        self.children = []
        self.receiver: WebhookRecorder | None = None

    def env(self) -> dict[str, str]:
        return {"GPUWATCH_HOME": str(self.home), "GPUWATCH_KAFKA_BOOTSTRAP": self.kafka.bootstrap,
                "GPUWATCH_WEB_PORT": str(self.web_port), "GPUWATCH_LOG_LEVEL": "warning",
                "GPUWATCH_NOTIFY_LISTEN": f"127.0.0.1:{self.notify_port}",
                "GPUWATCH_APP_ID": "gpuwatch-demo", "GPUWATCH_TOPIC_PREFIX": ""}

    def step(self, text: str):
        return self.console.status(f"[bold]{text}…", spinner="dots")

    def done(self, text: str) -> None:
        self.console.print(f"[green]✓[/] {text}")

    def query(self, sql: str) -> tuple[list[str], list[list]]:
        r = httpx.post(f"http://127.0.0.1:{self.web_port}/query", json={"sql": sql}, timeout=60)
        body = r.json()
        if r.status_code != 200:
            raise RuntimeError(body.get("error", r.text))
        return body["columns"], body["rows"]

    def run(self) -> int:
        c = self.console
        with self.step("Starting Apache Kafka 3.9.1 (KRaft) on loopback; the first run fetches it from Maven Central"):
            t0 = time.monotonic()
            self.kafka.start(timeout=180)
        self.done(f"Kafka ready on {self.kafka.bootstrap} in {time.monotonic() - t0:.0f}s")

        self.receiver = WebhookRecorder()
        with self.step("Starting the pipeline (Faust processors + embedded ClickHouse)"):
            pipeline = spawn("pipeline", ["pipeline"], self.env(), self.home / "logs")
            self.children.append(pipeline)
            pipeline.wait_for_line("pipeline: ready", timeout=180)
        self.done(f"pipeline ready (query API http://127.0.0.1:{self.web_port}/query)")
        with self.step("Starting the notifier"):
            notify = spawn("notify", ["notify", "--webhook", self.receiver.url], self.env(), self.home / "logs")
            self.children.append(notify)
            notify.wait_for_line("notify: ready", timeout=120)
        self.done(f"notifier ready, delivering to the demo webhook {self.receiver.url}")

        with self.step(f"Simulating {NODES} nodes x {GPUS} GPUs for {TICKS} scrapes with fault {FAULT}"):
            sim = spawn("agent", ["agent", "--simulate", str(NODES), "--gpus", str(GPUS), "--ticks", str(TICKS),
                                  "--fault", FAULT], self.env(), self.home / "logs")
            sim.popen.wait(300)
            summary = orjson.loads(sim.output().strip().splitlines()[-1])
        if sim.popen.returncode != 0 or summary.get("samples_published") is None:
            c.print(f"[red]✗ the simulated agents could not publish everything:[/] {summary}")
            return 1
        published = summary["samples_published"]
        self.done(f"agents published {published:,} samples in {summary['batches_published']:,} batches")

        with self.step("Waiting for the pipeline to store every sample"):
            wait_for(lambda: self.query("SELECT count() FROM gpuwatch.metrics_raw")[1][0][0] >= published, 120,
                     what="all samples stored")
        self.done(f"ClickHouse holds {published:,} raw samples, exactly as published")

        with self.step("Waiting for the alert to reach the webhook"):
            firing = wait_for(lambda: next((b for b in self.receiver.bodies() if b["status"] == "firing"), None),
                              120, what="a firing alert at the webhook")
        self.done("alert delivered to the webhook")
        self.show_alert(firing)
        with self.step("Waiting for it to resolve after the fault clears"):
            try:
                resolved = wait_for(lambda: next((b for b in self.receiver.bodies() if b["status"] == "resolved"),
                                                 None), 120, what="the resolved notification")
                self.done(f"resolved notification delivered ({resolved['alerts'][0]['labels']['alertname']}, "
                          f"ended {resolved['alerts'][0]['endsAt']})")
            except TimeoutError:
                c.print("[yellow]! no resolved notification yet[/]")
        self.show_evidence(firing)
        return 0

    def show_alert(self, body: dict) -> None:
        alert = body["alerts"][0]
        shown = {k: body[k] for k in ("status", "receiver", "groupKey")}
        shown["alert"] = {k: alert[k] for k in ("labels", "annotations", "startsAt", "fingerprint")}
        self.console.print(Panel(orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode(),
                                 title="what the webhook received (Alertmanager v4 JSON)", expand=False))

    def show_evidence(self, body: dict) -> None:
        alert = body["alerts"][0]["labels"]
        cols, rows = self.query(
            "SELECT alertname, status, source, evidence FROM gpuwatch.alerts FINAL ORDER BY event_ts LIMIT 10")
        t = Table("alertname", "status", "source", "evidence", title="gpuwatch.alerts (alert history)")
        for r in rows:
            ev = orjson.loads(r[3]) if r[3] else []
            t.add_row(r[0], r[1], r[2], "; ".join(f"{e.get('metric')}={e.get('value')}" for e in ev[:2]))
        self.console.print(t)
        node, gpu = alert.get("node"), alert.get("gpu", "-1")
        onset = body["alerts"][0]["startsAt"].rstrip("Z")
        cols, rows = self.query(
            "SELECT toStartOfInterval(ts, INTERVAL 10 SECOND) AS t, round(max(value), 1) AS max_temp_c, "
            "round(avg(value), 1) AS avg_temp_c FROM gpuwatch.metrics_raw "
            f"WHERE node = '{node}' AND gpu = {int(gpu)} AND metric = 'gpu_temp_c' "
            f"AND ts BETWEEN parseDateTime64BestEffort('{onset}', 3) - INTERVAL 60 SECOND "
            f"AND parseDateTime64BestEffort('{onset}', 3) + INTERVAL 90 SECOND GROUP BY t ORDER BY t")
        t = Table(*cols, title=f"the evidence: gpu_temp_c of {node} GPU {gpu} (gpuwatch.metrics_raw)")
        for r in rows:
            t.add_row(*(str(v) for v in r))
        self.console.print(t)
        self.console.print("[dim]Try it yourself while a pipeline runs: "
                           "gpuwatch query \"SELECT alertname, status, starts_at FROM gpuwatch.alerts\"[/]")

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()
        if self.receiver:
            self.receiver.close()
        self.kafka.stop()


def run_demo(args: argparse.Namespace) -> int:
    console = Console()
    home = Path(args.home).absolute()
    shutil.rmtree(home, ignore_errors=True)  # a fresh run each time: demo data only
    home.mkdir(parents=True)
    console.rule("[bold]gpuwatch demo")
    demo = Demo(home, console)
    try:
        code = demo.run()
    except (BrokerError, RuntimeError, TimeoutError) as e:
        console.print(f"[red]✗ {e}[/]\n[dim]logs are in {home / 'logs'}[/]")
        code = 1
    finally:
        with demo.step("Stopping everything the demo started"):
            demo.stop()
        console.print("[green]✓[/] stopped Kafka, the pipeline and the notifier")
    console.rule("[green]demo passed" if code == 0 else "[red]demo failed")
    return code
