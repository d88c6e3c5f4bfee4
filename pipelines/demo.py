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
import sys
import time
from pathlib import Path

import httpx
import orjson
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from agents.simulator import Fault
from infra.kafka.broker import BrokerError
from pipelines.devstack import WebhookRecorder, spawn, wait_for
from pipelines.local_stack import (StackError, StackOptions, StackRecord, point_home_at, replace_notifier,
                                   start_stack, stop_stack)
from pipelines.open_incidents import parse_ts
from pipelines.settings import CommonSettings

FAULT = "thermal_runaway@node-2/3:30+40"
NODES, GPUS, TICKS = 4, 8, 260


class Demo:
    def __init__(self, home: Path, console: Console) -> None:
        self.home = home
        self.console = console
        self.stack: StackRecord | None = None
        self.receiver: WebhookRecorder | None = None

    def step(self, text: str):
        if not self.console.is_terminal:  # a spinner shows nothing in a file: say what is happening
            self.console.print(f"… {text}")
        return self.console.status(f"[bold]{text}…", spinner="dots")

    def done(self, text: str) -> None:
        self.console.print(f"[green]✓[/] {text}")

    @property
    def web_url(self) -> str:
        return self.stack.part("pipeline").url

    def query(self, sql: str) -> tuple[list[str], list[list]]:
        r = httpx.post(f"{self.web_url}/query", json={"sql": sql}, timeout=60)
        body = r.json()
        if r.status_code != 200:
            raise RuntimeError(body.get("error", r.text))
        return body["columns"], body["rows"]

    def run(self) -> int:
        c = self.console
        fault = Fault.parse(FAULT)
        c.print(f"Injected fault: [bold]{fault.kind}[/] on {fault.node} GPU {fault.gpu}, from scrape {fault.start} "
                f"for {fault.duration} scrapes, in a simulated {NODES}-node x {GPUS}-GPU cluster")
        self.receiver = WebhookRecorder()
        with self.step("Starting Apache Kafka 3.9.1 (KRaft), the pipeline and the notifier on free ports; "
                       "the first run fetches Kafka from Maven Central"):
            t0 = time.monotonic()
            self.stack = start_stack(StackOptions(
                home=self.home, webhooks=[self.receiver.url], timeout_s=180,
                extra_env={"GPUWATCH_APP_ID": "gpuwatch-demo", "GPUWATCH_TOPIC_PREFIX": ""}),
                progress=lambda text: self.done(f"ready: {text}"))
        self.done(f"stack up in {time.monotonic() - t0:.0f}s; console {self.stack.console_url()}")

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

        on_gpu = lambda a: (a["labels"].get("node") == fault.node  # noqa: E731
                            and a["labels"].get("gpu") == str(fault.gpu))
        with self.step("Waiting for the alert to reach the webhook"):
            body, alert = wait_for(lambda: next(self.delivered("firing", on_gpu), None), 120,
                                   what="a firing alert at the webhook")
        name, fp = alert["labels"]["alertname"], alert["fingerprint"]
        onset = summary["first_ts"] + fault.start * summary.get("interval", 1.0)
        delay = parse_ts(alert["startsAt"]) - onset
        self.done(f"incident {name} ({fp}) on {fault.node} GPU {fault.gpu} FIRING, delivered to the webhook")
        c.print(f"  detection delay: {delay:.0f} s of data time from the fault's start "
                f"({_utc(onset)}) to the alert's start ({_utc(parse_ts(alert['startsAt']))}); "
                f"the incident's page: {alert['generatorURL']}")
        self.show_alert(body, alert)
        with self.step(f"Waiting for {name} to resolve after the fault clears"):
            try:
                _, resolved = wait_for(lambda: next(self.delivered("resolved", lambda a: a["fingerprint"] == fp),
                                                    None), 150, what="the resolved notification")
                self.done(f"incident {name} ({fp}) on {fault.node} GPU {fault.gpu} RESOLVED, ended "
                          f"{resolved['endsAt']}")
            except TimeoutError:
                c.print(f"[yellow]! {name} ({fp}) has not resolved yet[/]")
        self.show_evidence(alert)
        return 0

    def delivered(self, status: str, which):
        """(notification, alert) pairs the webhook received, of alerts in ``status`` that ``which`` picks.

        A notification may carry several alerts (grouping), so each is looked at.
        """
        for body in self.receiver.bodies():
            for a in body["alerts"]:
                if a["status"] == status and which(a):
                    yield body, a

    def env(self) -> dict[str, str]:
        return {"GPUWATCH_HOME": str(self.home), "GPUWATCH_KAFKA_BOOTSTRAP": self.stack.kafka_bootstrap,
                "GPUWATCH_TOPIC_PREFIX": ""}

    def show_alert(self, body: dict, alert: dict) -> None:
        shown = {k: body[k] for k in ("status", "receiver", "groupKey")}
        shown["alert"] = {k: alert[k] for k in ("labels", "annotations", "startsAt", "fingerprint", "generatorURL")}
        self.console.print(Panel(orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode(),
                                 title="what the webhook received (Alertmanager v4 JSON)", expand=False))

    def show_evidence(self, firing: dict) -> None:
        alert = firing["labels"]
        cols, rows = self.query(
            "SELECT alertname, status, source, evidence FROM gpuwatch.alerts FINAL ORDER BY event_ts LIMIT 10")
        t = Table("alertname", "status", "source", "evidence", title="gpuwatch.alerts (alert history)")
        for r in rows:
            ev = orjson.loads(r[3]) if r[3] else []
            t.add_row(r[0], r[1], r[2], "; ".join(f"{e.get('metric')}={e.get('value')}" for e in ev[:2]))
        self.console.print(t)
        node, gpu = alert.get("node"), alert.get("gpu", "-1")
        onset = firing["startsAt"].rstrip("Z")
        cols, rows = self.query(
            "SELECT toStartOfInterval(ts, INTERVAL 10 SECOND) AS t, round(max(value), 1) AS max_temp_c, "
            "round(avg(value), 1) AS avg_temp_c FROM gpuwatch.metrics_raw "
            f"WHERE node = '{node}' AND gpu = {int(gpu)} AND metric = 'gpu_temp_c' "
            f"AND ts BETWEEN parseDateTime64BestEffort('{onset}', 3) - INTERVAL 60 SECOND "
            f"AND parseDateTime64BestEffort('{onset}', 3) + INTERVAL 90 SECOND GROUP BY t ORDER BY t")
        t = Table(*cols, title=f"the evidence: gpu_temp_c of {node} GPU {gpu} (gpuwatch.metrics_raw)")
        for r in rows:
            t.add_row(f"{r[0]}Z", *(str(v) for v in r[1:]))  # stored in UTC
        self.console.print(t)
        gpuwatch = Path(sys.executable).parent / "gpuwatch"  # the venv's, which `make demo` does not put on PATH
        self.console.print(f"[dim]Try it yourself (the demo's data stays in {self.home}): GPUWATCH_HOME={self.home} "
                           f"{gpuwatch if gpuwatch.exists() else 'gpuwatch'} query "
                           "\"SELECT alertname, status, starts_at FROM gpuwatch.alerts\"[/]")

    def stop(self) -> None:
        stop_stack(self.home)
        if self.receiver:
            self.receiver.close()

    def keep(self) -> None:
        """Leave the stack running for `gpuwatch down`, without the demo's webhook (it goes with the demo)."""
        replace_notifier(self.home, webhooks=[])
        if self.receiver:
            self.receiver.close()
        point_home_at(CommonSettings().home, self.home)


def _utc(ts: float) -> str:
    return time.strftime("%H:%M:%SZ", time.gmtime(ts))


#: Written into the demo's home: only a directory holding it (or an empty one) is wiped for the next run.
DEMO_MARKER = ".gpuwatch-demo"


def demo_home_refusal(home: Path) -> str | None:
    """Why ``home`` may not be wiped for a demo run, or None. The demo deletes its home first; a directory
    it did not create (someone's files, a real ``GPUWATCH_HOME`` with its running stack) is refused."""
    if not home.exists():
        return None
    if not home.is_dir():
        return f"{home} is a file, not a directory"
    entries = sorted(p.name for p in home.iterdir())
    if not entries or DEMO_MARKER in entries:
        return None
    shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
    return (f"{home} is not empty and no demo made it (it holds {shown}); the demo wipes its home first, so "
            f"give it a new or empty directory, or remove {home} yourself")


def run_demo(args: argparse.Namespace) -> int:
    console = Console(emoji=False, highlight=False, width=None if sys.stdout.isatty() else 160)
    home = Path(args.home).absolute()
    refusal = demo_home_refusal(home)  # the command checks first; this guards other callers
    if refusal:
        raise ValueError(refusal)
    stop_stack(home)  # a kept demo from last time
    shutil.rmtree(home, ignore_errors=True)  # a fresh run each time: demo data only
    home.mkdir(parents=True)
    (home / DEMO_MARKER).write_text("written by gpuwatch demo: this directory is wiped by the next demo run\n")
    console.rule("[bold]gpuwatch demo")
    demo = Demo(home, console)
    keep = getattr(args, "keep", False)
    try:
        code = demo.run()
    except (BrokerError, StackError, RuntimeError, TimeoutError) as e:
        console.print(f"[red]✗ {e}[/]\n[dim]logs are in {home / 'logs'}[/]")
        code = 1
    except BaseException:
        keep = False
        raise
    finally:
        if keep and demo.stack is not None:
            demo.keep()
        else:
            with demo.step("Stopping everything the demo started"):
                demo.stop()
            console.print("[green]✓[/] stopped Kafka, the pipeline and the notifier")
    if keep and demo.stack is not None:
        console.print(f"The stack keeps running: console {demo.stack.console_url()}\n"
                      f"  look around: GPUWATCH_HOME={home} gpuwatch alerts --all; "
                      f"GPUWATCH_HOME={home} gpuwatch status\n  stop it: gpuwatch down")
    console.rule("[green]demo passed" if code == 0 else "[red]demo failed")
    return code
