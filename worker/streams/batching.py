"""Batches of stream events, acked only after they were handled."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import cast

from faust import Stream
from faust.types import EventT, StreamT


async def acked_batches(stream: StreamT[bytes], batch_max: int) -> AsyncIterator[list[EventT[bytes]]]:
    """Batches of events, each event acked only once the body that handled its batch returned.

    A drainer task moves events from the stream into a bounded inbox (so Faust's
    backpressure holds), and a batch is whatever the inbox holds when its first
    event is there, up to `batch_max`: a busy stream is handled in large batches,
    a quiet one without delay, and no event ever waits in a batch that is not yet
    yielded. (Faust's own `take_events` can ack events it never yielded when its
    drainer races it; a batch that waited for one more event would hold its
    events unacked while a rebalance or a shutdown waits for them.)
    """
    faust_stream = cast("Stream[bytes]", stream)
    faust_stream.enable_acks = False
    inbox: asyncio.Queue[EventT[bytes]] = asyncio.Queue(maxsize=batch_max)

    async def drain() -> None:
        async for _value in faust_stream:
            event = faust_stream.current_event
            assert event is not None, "a topic stream always has a current event"
            await inbox.put(event)

    drainer = asyncio.create_task(drain())
    try:
        while True:
            getting = asyncio.ensure_future(inbox.get())
            await asyncio.wait({getting, drainer}, return_when=asyncio.FIRST_COMPLETED)
            if not getting.done():
                getting.cancel()
                drainer.result()  # the stream ended: re-raise its error, if any
                return
            batch = [getting.result()]
            while len(batch) < batch_max and not inbox.empty():
                batch.append(inbox.get_nowait())
            yield batch
            for done in batch:
                await faust_stream.ack(done)
    finally:
        drainer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await drainer
