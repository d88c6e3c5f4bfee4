"""``python -m pipelines.notify notify|silence|ack|unack ...``: the notifier's commands alone.

The same subcommands as ``gpuwatch``, for hosts that run only the notifier and
for tests that should not depend on the rest of the CLI.
"""

from __future__ import annotations

import argparse
import sys

from pipelines.cli import UsageError
from pipelines.cli import ack as ack_cli
from pipelines.cli import notify as notify_cli
from pipelines.cli import silence as silence_cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.notify")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod in (notify_cli, silence_cli, ack_cli):
        mod.register(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UsageError as e:
        print(f"gpuwatch {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
