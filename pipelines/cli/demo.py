"""``gpuwatch demo``: the whole pipeline end to end on this machine (filled in below)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline end to end on this machine",
                       description="Start Kafka, the pipeline and the notifier, simulate a faulty cluster, "
                                   "and show the alert as a receiver got it.")
    p.add_argument("--home", default="var/demo",
                   help="where the demo keeps its data and logs: a new or empty directory, or an earlier "
                        "demo's (wiped first; any other directory is refused)")
    p.add_argument("--keep", action="store_true",
                   help="leave the stack and its console running afterwards (stop it with `gpuwatch down`)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipelines.cli import UsageError
    from pipelines.demo import demo_home_refusal, run_demo

    refusal = demo_home_refusal(Path(args.home).absolute())
    if refusal:
        raise UsageError(refusal)
    return run_demo(args)
