"""``python -m pipelines.notify notify|silence|ack|unack ...``: the notifier's commands alone.

The same subcommands as ``gpuwatch``, for hosts that run only the notifier and
for tests that should not depend on the rest of the CLI.
"""

import sys

from pipelines.cli import main

if __name__ == "__main__":
    sys.exit(main(commands=("notify", "silence", "ack"), prog="python -m pipelines.notify"))
