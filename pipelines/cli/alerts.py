"""``gpuwatch alerts``: what is wrong now, one line per open incident.

    gpuwatch alerts            # open incidents: severity, node/GPU, age, owner, summary, evidence
    gpuwatch alerts --all      # recent history too (resolved incidents)
    gpuwatch alerts --watch    # refresh every 2 s until Ctrl-C
    gpuwatch alerts --json
"""

from __future__ import annotations

import argparse
import sys
import time

from pipelines.cli.arg_types import in_range


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("alerts", help="show open incidents (--all: recent history) with owner and evidence",
                       description="Open incidents from the alert history, with who acknowledged them.")
    p.add_argument("--all", action="store_true", help="recent history too, resolved incidents included")
    p.add_argument("--watch", nargs="?", const=2.0, type=in_range(float, 0.1, 3600), metavar="SECONDS",
                   help="refresh every SECONDS (default 2) until Ctrl-C")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--limit", type=in_range(int, 1, 100_000), default=50,  # a negative one cut the answer short
                   help="at most this many incidents (default 50)")
    p.add_argument("--url", default=None, help="notify worker API for owners (default: discovered)")
    p.set_defaults(func=run)


def plain_console():
    """A console that prints data as it is: no emoji codes, no highlighting, and lines as long
    as they need to be when the output goes to a file or a pipe (no wrapping in the middle of a value)."""
    from rich.console import Console

    return Console(emoji=False, highlight=False, width=None if sys.stdout.isatty() else 400)


def table(incidents, note: str | None = None):
    from rich.table import Table
    from rich.text import Text

    from pipelines.notify.free_text import printable
    from pipelines.open_incidents import format_age

    def cell(value: str) -> Text:  # what alerts and people wrote: no markup, no control characters obeyed
        return Text(printable(value))

    t = Table("SEVERITY", "ALERT", "NODE/GPU", "AGE", "STATUS", "OWNER", "SUMMARY", "EVIDENCE",
              box=None, pad_edge=False, header_style="bold")
    colour = {"critical": "red", "warning": "yellow", "info": "cyan"}
    for inc in incidents:
        where = inc.node + (f"/{inc.gpu}" if inc.gpu >= 0 else "")
        status = inc.status + (" (silenced)" if inc.silenced else "")
        t.add_row(Text(printable(inc.severity), style=colour.get(inc.severity, "white")), cell(inc.alertname),
                  cell(where), format_age(inc.age_s), cell(status), cell(inc.owner or "-"), cell(inc.summary),
                  cell(inc.evidence_text()))
    return t


def run(args: argparse.Namespace) -> int:
    import orjson

    from pipelines.cli import UsageError
    from pipelines.open_incidents import load
    from pipelines.settings import CommonSettings
    from pipelines.store import StoreError

    settings = CommonSettings()
    console = plain_console()

    def snapshot():
        try:
            return load(settings.dsn(), settings.clickhouse_database, include_resolved=args.all,
                        notify_url=args.url, limit=args.limit)
        except StoreError as e:
            raise UsageError(str(e)) from None

    if args.json:
        incidents, note = snapshot()
        sys.stdout.write(orjson.dumps({"incidents": [i.as_dict() for i in incidents], "note": note}).decode() + "\n")
        return 0

    def render():
        incidents, note = snapshot()
        from rich.console import Group
        from rich.text import Text

        head = Text(f"{sum(i.status == 'firing' for i in incidents)} open incident(s)"
                    + (f", {len(incidents)} shown" if args.all else "")
                    + time.strftime(" at %Y-%m-%d %H:%M:%S %Z"))
        parts = [head] + ([table(incidents)] if incidents else [])
        if note:
            parts.append(Text(note, style="dim"))
        return Group(*parts)

    if not args.watch:
        console.print(render())
        return 0
    if not console.is_terminal:  # into a file or a pipe: one snapshot after another, no cursor codes
        while True:
            console.print(render())
            console.print()
            sys.stdout.flush()
            time.sleep(args.watch)
    from rich.live import Live

    with Live(render(), console=console, refresh_per_second=4, screen=False) as live:
        while True:
            time.sleep(args.watch)
            live.update(render())
