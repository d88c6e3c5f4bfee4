"""Fetched messages reach the processors' buffers at once, not a few loop turns each (issue 11).

Faust's fetch loop hands each fetched message to its stream's buffer through
``Service.wait_first(callback(message), suspend_flow.wait())``: four tasks
(the callback, the suspend event, the service's stopped and crashed events)
and an ``asyncio.wait`` per message, so each message takes two or more turns
of the event loop. Each turn also runs one batch of every busy processor, so
while the worker drains a metric backlog a fetch of 50 messages took 50 x 2+
batches to hand over: measured under full ingest, a quiet node's breach and
node events waited 0.3–0.9 s before their processor saw them, though no
callback ran longer than 60 ms.

The callback nearly always completes without suspending: it decodes the
message and puts it into a buffer that has room. :func:`dispatch_eagerly`
runs it inline and only when it does suspend (a full buffer, a paused flow, a
full producer buffer) lets a task take over from where it stopped, under
Faust's own ``wait_first``, so a rebalance that suspends the flow still
abandons it as before. A fetched batch is then handed over within one turn.
"""

from __future__ import annotations

import asyncio
from typing import Any, Coroutine, Generator

from mode.services import WaitResults  # mode: Faust's service library


class _Continuation:
    """Awaiting this goes on driving ``coro`` from the point where it first suspended on ``pending``."""

    __slots__ = ("coro", "pending")

    def __init__(self, coro: Coroutine, pending: Any) -> None:
        self.coro, self.pending = coro, pending

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, to_yield = self.coro, self.pending
        while True:
            try:
                sent = yield to_yield
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # a cancellation, thrown in by the task: the coroutine sees it
                try:
                    to_yield = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    to_yield = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def _go_on(coro: Coroutine, pending: Any) -> Any:
    return await _Continuation(coro, pending)


def run_until_suspended(coro: Coroutine) -> tuple[bool, Any]:
    """Run ``coro`` inline until it completes or first suspends.

    Returns ``(True, result)`` if it completed, else ``(False, task)``: a task
    that continues it. Its exceptions are raised here if raised before it suspends.
    Until then it runs as part of the caller's task (``current_task()``, the
    caller's context variables): fine for Faust's message callback, which sets
    no timeout; a coroutine that starts an ``asyncio.timeout`` first would tie it
    to the caller.

    >>> async def add(a, b):
    ...     return a + b
    >>> run_until_suspended(add(1, 2))
    (True, 3)
    """
    try:
        pending = coro.send(None)
    except StopIteration as stop:
        return True, stop.value
    return False, asyncio.ensure_future(_go_on(coro, pending))


def dispatch_eagerly(consumer: Any) -> None:
    """Make Faust's ``consumer`` hand each fetched message over inline while its flow runs.

    Only the fetch loop's call is changed (a coroutine first, the flow's
    suspend event second); with the flow suspended, the service stopping or
    crashed, and for any other call, Faust's ``wait_first`` runs as before.
    """
    wait_first = consumer.wait_first

    async def wait_first_eagerly(*coros: Any, timeout: Any = None) -> WaitResults:
        if (len(coros) == 2 and asyncio.iscoroutine(coros[0]) and asyncio.iscoroutine(coros[1])
                and not consumer.suspend_flow.is_set() and not consumer._stopped.is_set() and not consumer._crashed.is_set()):
            callback, suspend_wait = coros
            try:
                done, outcome = run_until_suspended(callback)
            except BaseException:
                suspend_wait.close()
                raise
            if done:
                suspend_wait.close()
                return WaitResults([callback], [outcome], False)
            return await wait_first(outcome, suspend_wait, timeout=timeout)
        return await wait_first(*coros, timeout=timeout)

    consumer.wait_first = wait_first_eagerly


__all__ = ["dispatch_eagerly", "run_until_suspended"]
