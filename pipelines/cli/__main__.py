"""``python -m pipelines.cli``: the ``gpuwatch`` command without the console script."""

import sys

from pipelines.cli import main

sys.exit(main())
