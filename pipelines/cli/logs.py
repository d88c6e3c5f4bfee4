"""``gpuwatch logs``: the log miner offline.

``gpuwatch logs templates FILE`` mines a log file (or ``-`` for stdin) with
the same record joining, header parsing, miner, masks and template ids as the
pipeline, and prints the templates with their line counts, most frequent
first. ``--assign`` prints one row per input line instead:
``<line number>\t<template_id>\t<template>`` (a blank line gets id 0 and no
template; the lines of a multi-line record share its template), so a file can
be joined against ``gpuwatch.logs`` or ``gpuwatch.log_templates``. Bytes that
are not UTF-8 are replaced, never fatal; oversized records are truncated with
the pipeline's marker. Bad arguments (a directory as FILE, an unwritable
``--state``) fail in one line before any work.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path
from typing import BinaryIO

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
                   help="print each line's number, template id and template (tab-separated) instead of the summary")
    t.add_argument("--state", metavar="PATH",
                   help="miner state file to start from and save to (default: none, start fresh)")
    t.add_argument("--json", action="store_true", help="one JSON object per template (or per line with --assign)")
    t.add_argument("--top", type=int, default=0, metavar="N", help="print only the N most frequent templates")
    t.add_argument("--format", metavar="REGEX|NAME",
                   help="the file's line format: a built-in format name or a regex with named groups "
                        "(msg required; ts, level, component, host optional); default: recognise it")
    t.add_argument("--similarity", type=float, default=None, metavar="X",
                   help="similarity a line needs to join a template, 0..1 (default: the pipeline's)")
    t.add_argument("--depth", type=int, default=None, metavar="N", help="drain tree depth (default: the pipeline's)")
    t.add_argument("--start-pattern", metavar="REGEX",
                   help="a line matching this starts a record; others continue it (default: built-in rules)")
    t.set_defaults(func=run_templates)


def read_lines(stream: BinaryIO) -> list[str]:
    """Lines as text: invalid UTF-8 replaced, line ends stripped."""
    return [raw.decode("utf-8", "replace").rstrip("\r\n") for raw in stream]


def check_args(args: argparse.Namespace) -> None:
    """Every argument error, as one line, before any work."""
    import re

    from pipelines.logs.headers import HeaderFormatError, HeaderParser

    if args.top < 0:
        raise UsageError("--top must be 0 (all) or more")
    if args.similarity is not None and not 0 < args.similarity <= 1:
        raise UsageError("--similarity must be above 0 and at most 1")
    if args.depth is not None and args.depth < 3:
        raise UsageError("--depth must be 3 or more")
    if args.format:
        try:
            HeaderParser(default=args.format)
        except HeaderFormatError as e:
            raise UsageError(str(e)) from None
    if args.start_pattern:
        try:
            re.compile(args.start_pattern)
        except re.error as e:
            raise UsageError(f"--start-pattern is not a valid regular expression: {e}") from None
    if not args.file:
        raise UsageError("no log file given (a path, or - for standard input)")
    if args.file != "-":
        path = Path(args.file)
        if path.is_dir():
            raise UsageError(f"{args.file} is a directory, not a log file")
        if not path.exists():
            raise UsageError(f"no such file: {args.file}")
        if not os.access(path, os.R_OK):
            raise UsageError(f"cannot read {args.file}: permission denied")
        if path.is_file():
            with open(path, "rb") as f:
                head = f.read(8192)
            if b"\x00" in head:  # mined as text it makes thousands of nonsense templates
                raise UsageError(f"{args.file} looks binary (a NUL byte in its first 8 KiB), not a text log")
    if args.state:
        _check_writable(Path(args.state))


def _check_writable(state: Path) -> None:
    """Create the state file's folder and a probe file in it now, so a bad path fails before mining; an
    existing file must be a miner state (the miner moves an unreadable one aside, which is for its own files)."""
    from pipelines.logs.miner import parse_state

    if state.is_dir():
        raise UsageError(f"--state {state} is a directory; give a file path")
    if state.is_file():
        try:
            parse_state(state.read_bytes())
        except Exception as e:  # noqa: BLE001 - whatever it is, it is not ours to move aside
            reason = str(e).splitlines()[0] if isinstance(e, ValueError) else type(e).__name__
            raise UsageError(f"--state {state} is not a template-miner state file ({reason}); give a new path "
                             "or one an earlier run wrote") from None
    try:
        state.parent.mkdir(parents=True, exist_ok=True)
        probe = state.with_name(f".{state.name}.{os.getpid()}.probe")
        probe.write_bytes(b"")
        probe.unlink()
        if state.exists() and not os.access(state, os.R_OK | os.W_OK):
            raise PermissionError("permission denied")
    except OSError as e:
        raise UsageError(f"--state {state} is not writable: {e.strerror or e}") from None


def run_templates(args: argparse.Namespace) -> int:
    """Two passes (see :mod:`pipelines.logs.offline`): every record gets its final template."""
    check_args(args)
    from pipelines.logs.headers import HeaderParser
    from pipelines.logs.miner import TemplateMiner
    from pipelines.logs.offline import assign_lines, assign_records

    if args.file == "-":
        lines = read_lines(sys.stdin.buffer)
    else:
        with open(args.file, "rb") as stream:
            lines = read_lines(stream)
    params = {k: v for k, v in (("sim_th", args.similarity), ("depth", args.depth)) if v is not None}
    miner = TemplateMiner(args.state, **params)
    parser = HeaderParser(default=args.format)
    try:
        by_record = assign_records(lines, miner, parser, source=args.file, start_pattern=args.start_pattern)
    finally:
        miner.close()
    try:
        if args.assign:
            write = sys.stdout.write
            for row in assign_lines(lines, by_record=by_record):
                if args.json:
                    write(orjson.dumps({"line": row.line, "template_id": row.template_id,
                                        "template": row.template}).decode() + "\n")
                else:
                    write(f"{row.line}\t{row.template_id}\t{row.template}\n")
            return 0
        counts: Counter = Counter(row.template_id for row in by_record)
        texts = {row.template_id: row.template for row in by_record}
        print_summary(counts, texts, args.top or None, args.json)
    except BrokenPipeError:  # `| head` is a normal way to read this
        return 0
    return 0


def print_summary(counts: Counter, texts: dict[int, str], top: int | None, as_json: bool) -> None:
    rows = counts.most_common(top)
    if as_json:
        for tid, n in rows:
            sys.stdout.write(orjson.dumps({"template_id": tid, "count": n, "text": texts[tid]}).decode() + "\n")
        return
    total = sum(counts.values())
    print(f"{len(counts)} templates from {total} records")
    print(f"{'count':>9}  {'template_id':<20}  template")
    for tid, n in rows:
        print(f"{n:>9}  {tid:<20}  {texts[tid]}")
