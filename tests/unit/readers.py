"""A test inbox for the pipeline's readers, and a wait on a condition."""

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any


class Inbox:
    """Yields the batches the test puts, as they come, and records the offsets acked."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[list[Any]] = asyncio.Queue()
        self.acked: list[list[int]] = []

    def put(self, messages: list[Any]) -> None:
        self.queue.put_nowait(messages)

    async def batches(self, batch_max: int) -> AsyncIterator[list[Any]]:
        while True:
            yield await self.queue.get()

    def done(self, batch: Sequence[Any]) -> None:
        self.acked.append([m.offset for m in batch])


async def until(condition: Callable[[], object]) -> None:
    """Return once `condition()` holds, checked on every turn of the loop (5 s at most)."""

    async def wait() -> None:
        while not condition():
            await asyncio.sleep(0)

    await asyncio.wait_for(wait(), 5)
