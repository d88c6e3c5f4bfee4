"""Fetched messages are handed over within one loop turn, and Faust's flow control still holds (issue 11)."""

from __future__ import annotations

import asyncio

import pytest
from mode import Service
from mode.utils.locks import Event

from pipelines.eager_dispatch import dispatch_eagerly, run_until_suspended


class FetchLoop(Service):
    """What Faust's consumer gives the patch: ``wait_first``, its stopped/crashed events, ``suspend_flow``."""

    def __init__(self) -> None:
        super().__init__()
        self.suspend_flow = Event()

    async def hand_over(self, callback) -> None:  # Faust's _drain_messages, one message
        await self.wait_first(callback, self.suspend_flow.wait())


async def busy_turns_while(work) -> tuple[int, object]:
    """Run ``work`` beside a task that takes every loop turn (a processor draining a backlog);
    return how many turns it got meanwhile."""
    turns = 0
    stop = False

    async def busy() -> None:
        nonlocal turns
        while not stop:
            turns += 1
            await asyncio.sleep(0)

    hog = asyncio.ensure_future(busy())
    await asyncio.sleep(0)
    start = turns
    try:
        result = await work
    finally:
        stop = True
        await hog
    return turns - start, result


def test_a_fetched_batch_is_handed_over_within_a_turn_or_two_while_a_processor_is_busy():
    async def main() -> tuple[int, list[int]]:
        fetch = FetchLoop()
        dispatch_eagerly(fetch)
        buffer: list[int] = []

        async def on_message(n: int) -> None:  # decode, then put into a buffer with room
            buffer.append(n)

        async def drain() -> list[int]:
            for n in range(50):
                await fetch.hand_over(on_message(n))
            return buffer

        return await busy_turns_while(drain())

    turns, handed = asyncio.run(main())
    assert handed == list(range(50))
    # Faust's own wait_first takes 2+ turns per message: 100+ for this batch
    assert turns <= 2


def test_a_callback_that_suspends_goes_on_from_where_it_stopped():
    async def main() -> list[str]:
        fetch = FetchLoop()
        dispatch_eagerly(fetch)
        buffer: asyncio.Queue = asyncio.Queue(maxsize=1)
        buffer.put_nowait("first")
        steps: list[str] = []

        async def on_message() -> str:
            steps.append("decoded")
            await buffer.put("second")  # full: suspends until the processor takes one
            steps.append("put")
            return "handed"

        handing = asyncio.ensure_future(fetch.hand_over(on_message()))
        await asyncio.sleep(0.01)
        steps.append("processor takes " + buffer.get_nowait())
        await handing
        steps.append("then " + buffer.get_nowait())
        return steps

    assert asyncio.run(main()) == ["decoded", "processor takes first", "put", "then second"]


def test_a_suspended_flow_abandons_a_blocked_hand_over_as_faust_does():
    async def main() -> tuple[list[str], bool]:
        fetch = FetchLoop()
        dispatch_eagerly(fetch)
        steps: list[str] = []
        never = asyncio.Event()

        async def on_message() -> None:
            steps.append("started")
            try:
                await never.wait()  # a full buffer that never drains: a rebalance comes instead
                steps.append("put")
            except asyncio.CancelledError:
                steps.append("cancelled")
                raise

        handing = asyncio.ensure_future(fetch.hand_over(on_message()))
        await asyncio.sleep(0.01)
        fetch.suspend_flow.set()
        await asyncio.wait_for(handing, 5)
        await asyncio.sleep(0.01)
        return steps, handing.done()

    steps, returned = asyncio.run(main())
    assert returned and steps == ["started", "cancelled"]


def test_a_callback_error_reaches_the_fetch_loop_before_and_after_a_suspension():
    async def main() -> list[str]:
        fetch = FetchLoop()
        dispatch_eagerly(fetch)
        seen = []

        async def fails_at_once() -> None:
            raise ValueError("undecodable")

        async def fails_later() -> None:
            await asyncio.sleep(0)
            raise KeyError("gone")

        for callback in (fails_at_once(), fails_later()):
            try:
                await fetch.hand_over(callback)
            except (ValueError, KeyError) as e:
                seen.append(type(e).__name__)
        return seen

    assert asyncio.run(main()) == ["ValueError", "KeyError"]


def test_with_the_flow_suspended_the_callback_is_not_run_inline():
    async def main() -> list[str]:
        fetch = FetchLoop()
        dispatch_eagerly(fetch)
        fetch.suspend_flow.set()
        steps: list[str] = []

        async def on_message() -> None:
            steps.append("ran")

        await fetch.hand_over(on_message())
        return steps

    # Faust's wait_first runs both and returns with the suspension; whether the callback got a turn is
    # Faust's business, but it was not forced through inline
    assert asyncio.run(main()) in ([], ["ran"])


def test_run_until_suspended_hands_a_suspended_coroutine_to_a_task():
    async def main() -> tuple[bool, object]:
        async def later() -> int:
            await asyncio.sleep(0)
            return 7

        done, task = run_until_suspended(later())
        return done, await task

    assert asyncio.run(main()) == (False, 7)


@pytest.mark.parametrize("eager", [True, False])
def test_other_calls_of_wait_first_keep_faust_behaviour(eager):
    async def main() -> list:
        fetch = FetchLoop()
        if eager:
            dispatch_eagerly(fetch)
        gate = asyncio.Event()
        asyncio.get_running_loop().call_later(0.01, gate.set)
        results = await fetch.wait_first(gate.wait(), timeout=5)
        return [len(results.done), results.results, results.stopped]

    assert asyncio.run(main()) == [1, [True], False]
