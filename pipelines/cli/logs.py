"""``gpuwatch logs``: the log miner offline.

``gpuwatch logs templates FILE`` mines a log file (or ``-`` for stdin) with
the same miner, masks and template ids as the pipeline, and prints the
templates with their line counts, most frequent first. ``--assign`` prints
each line's template id instead (``<template_id>\\t<line>``), so a file can be
joined against ``gpuwatch.logs`` or ``gpuwatch.log_templates``. Bytes that
are not UTF-8 are replaced, never fatal; oversized lines are truncated with
the pipeline's marker.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import BinaryIO, Iterator

import orjson

from pipelines.cli import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("logs", help="mine log templates offline",
                       description="Log template mining, offline, with the pipeline's miner and ids.")
    logs_sub = p.add_subparsers(dest="logs_command", metavar="SUBCOMMAND")
    logs_sub.required = True
    t = logs_sub.add_parser("templates", help="mine a log file and print its templates with counts",
                            description="Mine FILE (or - for stdin) and print each template with its line count.")
    t.add_argument("file", metavar="FILE", help="log file to mine, or - for stdin")
    t.add_argument("--assign", action="store_true",
                   help="print each line's template id and the line (tab-separated) instead of the summary")
    t.add_argument("--state", metavar="PATH",
                   help="miner state file to start from and save to (default: none, start fresh)")
    t.add_argument("--json", action="store_true", help="one JSON object per template (or per line with --assign)")
    t.add_argument("--top", type=int, default=0, metavar="N", help="print only the N most frequent templates")
    t.set_defaults(func=run_templates)


def read_lines(stream: BinaryIO) -> Iterator[str]:
    """Lines as text: invalid UTF-8 replaced, line ends stripped, oversized lines truncated."""
    from schemas.logs import truncate_line

    for raw in stream:
        yield truncate_line(raw.decode("utf-8", "replace").rstrip("\r\n"))


def run_templates(args: argparse.Namespace) -> int:
    """Two passes: the first teaches the miner the whole file, the second assigns and counts.

    drain3 generalises a template as it meets more lines ("worker a ready" becomes
    "worker <*> ready"); a single pass would count a line under whichever
    version existed when it was read. After the first pass every line gets its
    final template: the id the pipeline gives such a line once it has learned
    the file.
    """
    from pipelines.logs.miner import TemplateMiner

    if args.top < 0:
        raise UsageError("--top must be 0 (all) or more")
    if args.file != "-" and not Path(args.file).is_file():
        raise UsageError(f"no such file: {args.file}")
    buffered = list(read_lines(sys.stdin.buffer)) if args.file == "-" else None
    miner = TemplateMiner(args.state)
    counts: Counter = Counter()
    texts: dict[int, str] = {}
    try:
        for line in _lines(args.file, buffered):
            miner.mine(line)
        for line in _lines(args.file, buffered):
            mined = miner.mine(line)
            if args.assign:
                _print_assignment(mined.template_id, line, args.json)
            counts[mined.template_id] += 1
            texts[mined.template_id] = mined.text
    except BrokenPipeError:  # `| head` is a normal way to read this
        return 0
    finally:
        miner.close()
    if not args.assign:
        print_summary(counts, texts, args.top or None, args.json)
    return 0


def _lines(file: str, buffered: list[str] | None) -> Iterator[str]:
    if buffered is not None:
        yield from (line for line in buffered if line.strip())
        return
    with open(file, "rb") as stream:
        yield from (line for line in read_lines(stream) if line.strip())


def _print_assignment(tid: int, line: str, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(orjson.dumps({"template_id": tid, "line": line}).decode() + "\n")
    else:
        sys.stdout.write(f"{tid}\t{line}\n")


def print_summary(counts: Counter, texts: dict[int, str], top: int | None, as_json: bool) -> None:
    rows = counts.most_common(top)
    if as_json:
        for tid, n in rows:
            sys.stdout.write(orjson.dumps({"template_id": tid, "count": n, "text": texts[tid]}).decode() + "\n")
        return
    total = sum(counts.values())
    print(f"{len(counts)} templates from {total} lines")
    print(f"{'count':>9}  {'template_id':<20}  template")
    for tid, n in rows:
        print(f"{n:>9}  {tid:<20}  {texts[tid]}")
