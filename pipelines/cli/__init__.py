"""The ``gpuwatch`` command. Each subcommand lives in its own module here.

A module exposes ``register(subparsers)``, which adds its parser and sets
``func`` to a callable taking the parsed args and returning an exit code.
Heavy imports happen inside those callables so ``gpuwatch --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

COMMANDS = ("kafka", "agent", "pipeline", "notify", "silence", "ack", "query", "logs", "demo", "backtest")
#: ``up`` registers up, down and status; ``alerts`` the open incidents.
COMMANDS += ("up", "alerts")


class UsageError(Exception):
    """Bad arguments or configuration: printed as one line, exit code 2."""


def build_parser(commands: tuple[str, ...] = COMMANDS, prog: str = "gpuwatch") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="GPU cluster monitoring and alerting: agent, pipeline, notifier, queries.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in commands:
        importlib.import_module(f"pipelines.cli.{name}").register(sub)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gpuwatch")
    except PackageNotFoundError:
        return "unknown (not installed)"


def main(argv: list[str] | None = None, commands: tuple[str, ...] = COMMANDS, prog: str = "gpuwatch") -> int:
    parser = build_parser(commands, prog)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UsageError as e:
        print(f"gpuwatch {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except OSError as e:  # a path that cannot be read or written (missing, a directory, no permission)
        if e.filename is None or os.environ.get("GPUWATCH_TRACEBACK"):
            raise
        print(f"gpuwatch {args.command}: error: {os_error_line(e)}", file=sys.stderr)
        return 1
    except Exception as e:
        line = settings_error_line(e)
        if line is None:
            raise
        print(f"gpuwatch {args.command}: error: {line}", file=sys.stderr)
        return 2


def os_error_line(e: OSError) -> str:
    """One line for a file-system error: what went wrong and the path (GPUWATCH_TRACEBACK=1 for the traceback).

    >>> os_error_line(IsADirectoryError(21, "Is a directory", "/tmp"))
    'cannot use /tmp: Is a directory'
    """
    where = e.filename if e.filename2 is None else f"{e.filename} -> {e.filename2}"
    if isinstance(e, FileExistsError) and os.path.isfile(e.filename):
        return f"cannot use {where}: it is a file, and a directory is needed there"
    return f"cannot use {where}: {e.strerror or e}"


def settings_error_line(e: Exception) -> str | None:
    """A bad ``GPUWATCH_*`` setting (pydantic's ValidationError) as one line naming it; None for anything else.

    Settings are read inside each command, so this is where a typo in the environment turns
    from a traceback into the line a user can act on.
    """
    if not type(e).__module__.startswith("pydantic"):
        return None
    if type(e).__name__ == "SettingsError":  # a value that is not even JSON, from the environment
        return f"{e}{': ' + str(e.__cause__) if e.__cause__ else ''}"
    if type(e).__name__ != "ValidationError":
        return None
    first = e.errors()[0]
    where = ".".join(map(str, first["loc"])) or type(e).__name__
    return f"{where}: {first['msg'].removeprefix('Value error, ')}"


if __name__ == "__main__":
    sys.exit(main())
