"""The doorbell ``serve --workers``'s workers share (strongroom.cache.Doorbell): a worker that
queued a rotation rings it, and worker 0's event loop hears it. The end-to-end case (worker 1
queues, worker 0 rotates at once) is tests/e2e/test_workers.py's."""

from __future__ import annotations

import asyncio
import os

from strongroom.cache import Doorbell


def test_a_ring_is_heard_on_the_listeners_loop_even_from_another_process() -> None:
    bell = Doorbell()
    heard: list[int] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        event = asyncio.Event()

        def on_ring() -> None:
            heard.append(1)
            event.set()

        bell.listen(loop, on_ring)
        child = os.fork()
        if child == 0:  # a worker forked after the bell was made rings it
            bell.ring()
            os._exit(0)
        await asyncio.wait_for(event.wait(), 30)
        os.waitpid(child, 0)

    asyncio.run(main())
    assert heard == [1]


def test_ringing_never_blocks_and_rings_not_yet_heard_are_heard_once() -> None:
    bell = Doorbell()
    for _ in range(200_000):  # far more than a pipe holds: a full pipe must not block the ringer
        bell.ring()
    heard: list[int] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        bell.listen(loop, lambda: heard.append(1))
        while not heard:
            await asyncio.sleep(0)
        for _ in range(20):  # the pipe was drained: nothing more to hear
            await asyncio.sleep(0)

    asyncio.run(main())
    assert heard == [1]
