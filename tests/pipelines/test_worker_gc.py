"""The worker's garbage-collector policy: survivors frozen, cycles still freed, every pause timed."""

from __future__ import annotations

import gc
import logging
import weakref

import pytest

from pipelines.worker_gc import GC_PAUSE, GcPauses, freeze_survivors, full_collection


class Node:
    """Stands in for per-series state that ends up in a reference cycle."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture(autouse=True)
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_survivors_are_frozen_and_garbage_is_not():
    garbage = Node()
    dead = weakref.ref(garbage)
    del garbage  # a cycle nothing reaches: must be collected, not frozen forever
    kept = [Node() for _ in range(1000)]
    freeze_survivors()
    assert dead() is None
    assert gc.get_freeze_count() >= len(kept)
    tracked = {id(o) for o in gc.get_objects()}  # what a collection walks: frozen objects are not among them
    assert not any(id(n) in tracked for n in kept)


def test_a_full_collection_frees_cycles_that_died_while_frozen():
    state = Node()
    dead = weakref.ref(state)
    freeze_survivors()
    del state
    gc.collect()  # an ordinary collection does not look at frozen objects
    assert dead() is not None
    full_collection()
    assert dead() is None
    assert gc.get_freeze_count() > 0  # what is still alive is frozen again


def test_every_collection_is_timed_and_slow_ones_are_logged_outside_the_collection(caplog):
    pauses = GcPauses(slow_s=0.0)  # every pause counts as slow
    before = GC_PAUSE.labels("2")._sum.get()
    gc.callbacks.append(pauses)
    try:
        gc.collect()
    finally:
        gc.callbacks.remove(pauses)
    assert GC_PAUSE.labels("2")._sum.get() > before
    assert pauses.longest > 0
    with caplog.at_level(logging.WARNING, logger="gpuwatch.gc"):
        pauses.report_slow()
    assert "garbage collection of generation 2 paused the worker" in caplog.text
