"""Keep the stream library's chatter out of an operator's log.

Faust, mode and aiokafka log every service's "Starting..."/"Stopping...", topic
tables and partition assignments at INFO, and a few transient conditions of a
normal start at WARNING or ERROR (the group coordinator still loading, a topic
Faust is about to create itself, a timer that ran late while the worker warmed
up). None of it asks anything of an operator, so it is logged at DEBUG: visible
with ``--log-level debug``, absent otherwise. gpuwatch's own messages and the
libraries' real warnings and errors pass unchanged.
"""

from __future__ import annotations

import logging
import re
import sys

LIBRARIES = ("faust", "mode", "aiokafka", "kafka", "venusian")

#: Warnings and errors of a normal start (and of a busy moment) that are not faults.
TRANSIENT = re.compile(
    r"Group Coordinator Request failed|GroupCoordinatorNotAvailable|NotCoordinatorForGroup"
    r"|Marking the coordinator dead|not found in cluster metadata|Topic .* is not available during auto-create"
    r"|Timer .* is overlapping|woke up too late|Heartbeat failed for group .* because it is rebalancing")


class LibraryChatter(logging.Filter):
    """Demote library INFO, and known transient warnings, to DEBUG.

    >>> f = LibraryChatter(logging.INFO)
    >>> rec = logging.LogRecord("faust.app.base", logging.INFO, "", 0, "[^-App]: Starting...", None, None)
    >>> f.filter(rec), rec.levelname
    (False, 'DEBUG')
    >>> rec = logging.LogRecord("pipelines.app", logging.INFO, "", 0, "alert firing", None, None)
    >>> f.filter(rec), rec.levelname
    (True, 'INFO')
    >>> rec = logging.LogRecord("aiokafka.consumer.group_coordinator", logging.ERROR, "", 0,
    ...                         "Group Coordinator Request failed: [Error 15]", None, None)
    >>> f.filter(rec)
    False
    """

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG or not record.name.startswith(LIBRARIES):
            return True
        if record.levelno <= logging.INFO or (record.levelno <= logging.ERROR
                                              and TRANSIENT.search(str(record.msg))):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return self.level <= logging.DEBUG
        return True


def quiet_library_logs(logger: logging.Logger, level: int) -> None:
    """Install :class:`LibraryChatter` on every handler of ``logger`` (the root logger)."""
    chatter = LibraryChatter(level)
    for handler in logger.handlers:
        if not any(isinstance(f, LibraryChatter) for f in handler.filters):
            handler.addFilter(chatter)


def quiet_worker_logs(worker, level: str) -> None:
    """Make a Faust worker log library chatter at DEBUG and draw no spinner into files.

    Works on any ``faust.Worker`` (or subclass) instance: it hooks the
    worker's root-logger set-up, where Faust installs its handlers. Faust's
    start-up spinner writes terminal control codes (``ESC[?25l``) whatever
    stdout is; off a terminal it is switched off.
    """
    setup = worker.on_setup_root_logger

    def on_setup_root_logger(logger: logging.Logger, lvl: int) -> None:
        setup(logger, lvl)
        quiet_library_logs(logger, lvl)

    worker.on_setup_root_logger = on_setup_root_logger
    if not sys.stdout.isatty():
        worker.spinner = None
