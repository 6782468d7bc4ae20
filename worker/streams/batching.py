"""Batches of stream events, acked only after they were handled."""

from collections.abc import AsyncIterator
from typing import cast

from faust import Stream
from faust.types import ChannelT, EventT, StreamT


async def acked_batches(stream: StreamT[bytes], batch_max: int) -> AsyncIterator[list[EventT[bytes]]]:
    """Batches of events, each event acked only once the body that handled its batch returned.

    A batch ends when `batch_max` events are in or when no more are queued, so a
    busy stream is handled in large batches and a quiet one without delay. (Faust's
    own `take_events` can ack events it never yielded when its drainer races it.)
    """
    faust_stream = cast("Stream[bytes]", stream)
    faust_stream.enable_acks = False
    queue = cast(ChannelT[bytes], faust_stream.channel).queue
    batch: list[EventT[bytes]] = []
    async for _value in faust_stream:
        event = faust_stream.current_event
        assert event is not None, "a topic stream always has a current event"
        batch.append(event)
        if len(batch) >= batch_max or queue.empty():
            yield batch
            for done in batch:
                await faust_stream.ack(done)
            batch = []
