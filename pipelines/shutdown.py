"""SIGTERM stops a gpuwatch process within a bound, whatever state the broker and store are in.

A process first stops cleanly: it flushes what it can and commits only what
is stored. When that cannot finish in time (the broker is down, the store
fails), :func:`exit_within` ends the process anyway. Nothing is lost by
that: offsets of rows that were not stored were never committed, so Kafka
replays them on the next start.
"""

from __future__ import annotations

import os
import sys
import threading

_armed = threading.Event()


def exit_within(seconds: float, name: str) -> None:
    """From now on, end this process after ``seconds`` if it has not ended by itself (once per process)."""
    if _armed.is_set():
        return
    _armed.set()

    def force() -> None:
        try:
            sys.stderr.write(f"gpuwatch {name}: did not stop within {seconds:g} s (broker or store not answering); "
                             "exiting now, what was not stored is replayed from Kafka on the next start\n")
            sys.stderr.flush()
        finally:
            os._exit(1)

    timer = threading.Timer(seconds, force)
    timer.daemon = True
    timer.start()
