"""``python -m agents``: the same as ``gpuwatch-agent``."""

import sys

from agents.cli import main

sys.exit(main())
