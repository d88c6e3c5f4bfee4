"""``gpuwatch up``, ``down`` and ``status``: the local stack as one thing.

    gpuwatch up                      # Kafka, pipeline, notifier in the background on free ports
    gpuwatch status [--json]         # processes, broker, consumer lag, rows, notifier, open incidents
    gpuwatch down                    # stop all of it (within 10 s)

Where everything runs is recorded in ``$GPUWATCH_HOME/run/stack.json``, so
every later ``gpuwatch`` command on the same home finds it.
"""

from __future__ import annotations

import argparse
import os
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("up", help="start Kafka, the pipeline and the notifier in the background",
                       description="Start the local stack on free ports and wait until every part is ready.")
    p.add_argument("--webhook", action="append", default=[], metavar="URL",
                   help="deliver every alert to this webhook too (default: the notifier's log only)")
    p.add_argument("--notify-config", metavar="FILE", help="the notifier's routing YAML instead of --webhook")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds each part may take to start")
    p.set_defaults(func=run_up)

    d = sub.add_parser("down", help="stop everything `gpuwatch up` started",
                       description="Stop the local stack's notifier, pipeline and Kafka (kills what is "
                                   "still running after 8 s).")
    d.set_defaults(func=run_down)

    s = sub.add_parser("status", help="show the local stack: processes, lag, rows, notifier, incidents",
                       description="Processes, broker reachability, consumer lag per topic, rows written, "
                                   "insert errors, the notifier's queue and last delivery, open incidents.")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.add_argument("--url", default=None, help="notify worker API (default: discovered)")
    s.set_defaults(func=run_status)


def _home():
    from pipelines.settings import CommonSettings

    return CommonSettings().home.absolute()


def run_up(args: argparse.Namespace) -> int:
    from pipelines.cli import UsageError
    from pipelines.cli.alerts import plain_console
    from pipelines.local_stack import StackError, StackOptions, StackRecord, start_stack

    console = plain_console()
    home = _home()
    rec = StackRecord.load(home)
    if rec is not None and rec.running():
        broker = rec.broker()
        dead = [p.name for p in rec.parts if not p.alive()] + (
            ["kafka"] if broker is not None and broker.pid() is None else [])
        if dead:
            console.print(f"partly up in {home}: {', '.join(dead)} stopped (logs in {rec.home}/logs); "
                          "run `gpuwatch down`, then `gpuwatch up` again")
            return 3
        console.print(f"already up in {home} (stop it with `gpuwatch down`)")
        _print_where(console, rec)
        return 0
    _check_options(args)
    opts = StackOptions(home=home, kafka_bootstrap=os.environ.get("GPUWATCH_KAFKA_BOOTSTRAP") or None,
                        webhooks=list(args.webhook), notify_config=args.notify_config, timeout_s=args.timeout)
    try:
        with console.status("starting Kafka, the pipeline and the notifier", spinner="dots") as st:
            rec = start_stack(opts, progress=lambda text: (console.print(f"ready: {text}"),
                                                           st.update("starting the next part")))
    except StackError as e:
        raise UsageError(str(e)) from None
    console.print(f"gpuwatch is up in {home}")
    _print_where(console, rec)
    return 0


def _check_options(args: argparse.Namespace) -> None:
    """What the notifier would refuse, refused before Kafka and the pipeline are started (about 20 s)."""
    from pipelines.cli import UsageError
    from pipelines.notify.config import ConfigError, load_config, quick_config

    if not args.timeout > 0:
        raise UsageError(f"--timeout must be positive, got {args.timeout:g}")
    if args.notify_config and args.webhook:
        raise UsageError("use either --notify-config (routing file) or --webhook (quick mode), not both")
    try:
        if args.notify_config:
            load_config(args.notify_config)
    except ConfigError as e:
        problems = " ".join(line.strip().removeprefix("- ") for line in str(e).splitlines() if line.strip())
        raise UsageError(f"--notify-config: {problems}") from None
    for url in args.webhook:
        try:
            quick_config([url])
        except ConfigError as e:
            raise UsageError(f"--webhook {url}: {str(e).rpartition('.url: ')[2].splitlines()[0]}") from None


def _print_where(console, rec) -> None:
    console.print(f"  console   {rec.console_url()}")
    pipeline, notify = rec.part("pipeline"), rec.part("notify")
    console.print(f"  kafka     {rec.kafka_bootstrap}")
    if pipeline:
        console.print(f"  pipeline  {pipeline.url}  (/query, /metrics, /healthz)")
    if notify:
        console.print(f"  notifier  {notify.url}  (/api/v1/alerts, /api/v1/silences, /api/v1/acks)")
    console.print(f"  logs      {rec.home}/logs")
    console.print("  next: gpuwatch agent --simulate 4 --gpus 8 --ticks 300 --fault ecc_storm@node-3/5:120+60; "
                  "gpuwatch alerts; gpuwatch status; gpuwatch down")


def run_down(args: argparse.Namespace) -> int:
    from pipelines.local_stack import StackRecord, stop_stack

    home = _home()
    if StackRecord.load(home) is None:
        print(f"nothing to stop: `gpuwatch up` has not started anything in {home}")
        return 0
    stopped = stop_stack(home)
    print(f"stopped {', '.join(stopped)}" if stopped else "everything had already stopped")
    return 0


def run_status(args: argparse.Namespace) -> int:
    import orjson

    from pipelines.settings import CommonSettings
    from pipelines.stack_status import gather

    st = gather(CommonSettings(), args.url)
    if args.json:
        sys.stdout.write(orjson.dumps(st).decode() + "\n")
    else:
        _print_status(st)
    healthy = st["broker"]["reachable"] and st["pipeline"].get("reachable") and st["notifier"].get("reachable")
    return 0 if healthy else 3


def _print_status(st: dict) -> None:
    from rich.table import Table

    from pipelines.cli.alerts import plain_console
    from pipelines.cli.alerts import table as incidents_table
    from pipelines.open_incidents import Incident

    c = plain_console()
    if st["processes"]:
        t = Table("PROCESS", "PID", "STATE", "ADDRESS", "LOG", box=None, pad_edge=False, header_style="bold")
        for p in st["processes"]:
            t.add_row(p["name"], str(p["pid"] or "-"), "running" if p["running"] else "[red]stopped[/]",
                      p["address"], p["log"])
        c.print(t)
    else:
        c.print(f"no stack started by `gpuwatch up` in {st['home']}; checking the configured parts")
    b = st["broker"]
    c.print(f"broker    {b['bootstrap']}: " + (f"reachable, {b['topics']} topics" if b["reachable"]
                                                 else f"[red]unreachable[/] ({b.get('error', '')})"))
    for row in st["lag"]:
        lag = "?" if row["lag"] is None else str(row["lag"])
        c.print(f"  lag {lag:>8}  {row['topic']}  (group {row['group']})")
    p = st["pipeline"]
    if p.get("reachable"):
        rate = (f"; last {p['per_minute_over_s']}s: {p['rows_written_per_minute']:g} rows/min, "
                f"{p['insert_errors_per_minute']:g} insert errors/min" if p.get("per_minute_over_s") else
                "; per-minute rates from the next `gpuwatch status` (20 s to 5 min from now)")
        c.print(f"pipeline  {p['url']}: {p['rows_written_total']:,} rows written, "
                f"{p['insert_errors_total']} insert errors, {p['dead_lettered_total']} dead-lettered{rate}")
    else:
        c.print(f"pipeline  [red]not reachable[/] ({p.get('error', '')})")
    n = st["notifier"]
    if n.get("reachable"):
        when = str(n.get("last_delivery") or "").replace("T", " ").split(".")[0]  # to the second
        last = (f"last delivery {when} UTC ({n.get('last_delivery_integration')}: "
                f"{n.get('last_delivery_outcome')})" if n.get("last_delivery") else "no delivery yet")
        c.print(f"notifier  {n['url']}: {n['queued_alerts']} alerts queued in {n['groups']} groups, {last}")
    else:
        c.print(f"notifier  [red]not reachable[/] at {n['url']}")
    inc = st["incidents"]
    if inc.get("open") is None:
        c.print(f"incidents unknown ({inc.get('error', '')})")
    else:
        c.print(f"incidents {inc['open']} open")
        if inc["items"]:
            items = [Incident(**{k: v for k, v in i.items() if k != "age_s"}) for i in inc["items"]]
            c.print(incidents_table(items))
    if st.get("console"):
        c.print(f"console   {st['console']}")
