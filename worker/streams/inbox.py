"""Fetched messages handed to a task a partition's batch at a time, around Faust's per-event path.

Faust moves every message on its own: the fetcher awaits a delivery to the
topic's channel per message (four tasks each, in `wait_first`), and a stream
yields each event after a trip through the event loop (`sleep(0)`), sensors
and processors. Measured here, that was most of the worker's time. An `Inbox`
takes each partition's fetched records as one list instead (see `fetch`), and
`batches` yields them to a task in batches; the task acks each batch with
`done` once its effects are durable, as Faust's consumer expects for its
commits and for a rebalance's wait for unacked messages (a batch's last
message of each partition stands for it there).

What the stream did for an event is kept: a batch is tracked as unacked
when it is taken, and one fetched in an older generation or while flow is
suspended (a rebalance) is dropped without an ack, to be read again from the
committed offset. The queue is managed by the app's flow control, which
clears it after a real suspension.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import faust
from faust.types import Message, TopicT
from mode.utils.queues import FlowControlQueue

from worker.web.metrics import MetricsSensor


class Fetches(FlowControlQueue[list[Message]]):
    """Fetched lists, unbounded as a queue but counted in messages, with `room` set below `limit` of them.

    A bound in lists would starve a trickle: a fetch of 40 partitions brings 40 short lists.
    """

    def __init__(self, limit: int, **kwargs: Any) -> None:
        self.limit = limit
        self.messages = 0
        self.room = asyncio.Event()
        self.room.set()
        super().__init__(**kwargs)

    def _put(self, item: list[Message]) -> None:
        super()._put(item)
        self.messages += len(item)
        if self.messages >= self.limit:
            self.room.clear()

    def _get(self) -> list[Message]:
        item: list[Message] = super()._get()
        self._count(-len(item))
        return item

    def clear(self) -> None:
        """Drop every queued list (flow control does, after a suspension)."""
        super().clear()
        self._count(-self.messages)

    def _count(self, change: int) -> None:
        self.messages += change
        if self.messages < self.limit:
            self.room.set()


class Inbox:
    """The fetched messages of `topic`'s topics, for one task, with room for `limit` messages."""

    def __init__(self, app: faust.App, topic: TopicT, sensor: MetricsSensor, limit: int) -> None:
        self.app = app
        self.topic = topic
        self.sensor = sensor
        self.queue = Fetches(limit, flow_control=app.flow_control, clear_on_resume=True)

    @property
    def names(self) -> frozenset[str]:
        """The names of the topics read."""
        return frozenset(self.topic.topics)

    async def put(self, messages: list[Message]) -> None:
        """Queue one partition's fetched messages, in offset order, once the inbox has room (backpressure)."""
        await self.queue.room.wait()
        now = time.monotonic()
        for message in messages:
            message.time_in = now
        await self.queue.put(messages)

    async def batches(self, batch_max: int) -> AsyncIterator[list[Message]]:
        """Batches of whole fetched lists, from one list up to about `batch_max` messages, tracked as unacked.

        The reader acks each batch with `done` once it is durable, batches in the order they came.
        """
        while True:
            batch = self._current(await self.queue.get())
            while len(batch) < batch_max and not self.queue.empty():
                batch.extend(self._current(self.queue.get_nowait()))
            if batch:
                self.app.consumer.unacked.update(_last_of_each_partition(batch))
                yield batch

    def done(self, batch: Sequence[Message]) -> None:
        """Ack a batch: its effects are durable. Its last message of each partition is acked, which is what
        the offsets committed and a rebalance's wait for unacked messages read (see `_last_of_each_partition`)."""
        consumer = self.app.consumer
        for message in _last_of_each_partition(batch):
            consumer.ack(message)
        self.sensor.handled(batch)

    def _current(self, messages: Sequence[Message]) -> list[Message]:
        """The messages, unless flow is suspended or they were fetched in an older generation (one fetch, one)."""
        if not self.app.flow_control.is_active() or messages[0].generation_id != self.app.consumer_generation_id:
            return []
        return list(messages)


def _last_of_each_partition(batch: Sequence[Message]) -> list[Message]:
    """The messages of a batch that stand for it in Faust's bookkeeping: the last of each partition.

    A batch is acked whole and in order, and the offset committed is the one after the highest ack (see
    `offsets`), so acking these commits the same offsets as acking every message; while they are unacked a
    rebalance waits for the batch. Acking each message took a tenth of the worker's time.
    """
    return list({message.tp: message for message in batch}.values())
