"""Rows an event produces wait beside the sink until the event is known to still be this worker's.

A processor may await inside ``handle`` (an alert send, a store that is down)
while its partition is revoked. Everything the worker kept for that partition is
dropped at the revoke (``PipelineContext.forget_partitions``), but the event
in flight would go on adding rows afterwards, and those rows would be stored by
a worker that no longer owns the partition while its next owner stores them too.
So the processor loop runs ``handle`` inside :meth:`StagingSink.staging`: the
sink's ``add`` and ``add_columns`` calls made by that event (and by tasks it starts, until it ends)
are recorded, and the loop then either passes them to the sink (the partition
is still owned) or drops them (it was revoked; the next owner re-reads the event
from the commit). Everything else is the wrapped sink's.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Callable, Iterator

#: the calls that put rows into the sink; everything else passes straight through
STAGED_CALLS = frozenset({"add", "add_columns"})


class Stage:
    """The sink calls one event made, held until :meth:`commit` or :meth:`discard`."""

    def __init__(self) -> None:
        self.calls: list[tuple[Callable[..., Any], tuple, dict]] = []
        self.open = True

    def commit(self) -> None:
        calls, self.calls = self.calls, []
        for call, args, kwargs in calls:
            call(*args, **kwargs)

    def discard(self) -> int:
        """Drop the held calls; returns how many there were."""
        n, self.calls = len(self.calls), []
        return n


_current: ContextVar[Stage | None] = ContextVar("gpuwatch_stage", default=None)


class StagingSink:
    """A sink whose row-adding calls are held while an event's :meth:`staging` is open.

    >>> class Sink:
    ...     rows = []
    ...     def add(self, table, rows): self.rows.extend(rows)
    >>> sink = StagingSink(Sink())
    >>> with sink.staging() as stage:
    ...     sink.add("t", [1, 2])
    >>> sink.rows, stage.discard(), sink.rows
    ([], 1, [])
    """

    def __init__(self, sink: Any) -> None:
        object.__setattr__(self, "inner", sink)

    @contextmanager
    def staging(self) -> Iterator[Stage]:
        stage = Stage()
        token = _current.set(stage)
        try:
            yield stage
        finally:
            stage.open = False  # tasks started by the event see a closed stage and write through
            _current.reset(token)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name not in STAGED_CALLS:
            return attr

        def staged(*args: Any, **kwargs: Any) -> None:
            stage = _current.get()
            if stage is None or not stage.open:
                return attr(*args, **kwargs)
            stage.calls.append((attr, args, kwargs))
            return None
        return staged

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.inner, name, value)
