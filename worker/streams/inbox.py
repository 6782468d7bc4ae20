"""Fetched messages handed to a task a partition's batch at a time, around Faust's per-event path.

Faust moves every message on its own: the fetcher awaits a delivery to the
topic's channel per message (four tasks each, in `wait_first`), and a stream
yields each event after a trip through the event loop (`sleep(0)`), sensors
and processors. Measured here, that was most of the worker's time. An `Inbox`
takes each partition's fetched records as one list instead (see `fetch`), and
`batches` yields them to a task in batches, acking each message after the
task has handled its batch, as Faust's consumer expects for its commits and
for a rebalance's wait for unacked messages.

What the stream did for an event is kept: a message is tracked as unacked
when it is taken, and one fetched in an older generation or while flow is
suspended (a rebalance) is dropped without an ack, to be read again from the
committed offset. The queue is managed by the app's flow control, which
clears it after a real suspension.
"""

import time
from collections.abc import AsyncIterator, Sequence

import faust
from faust.types import Message, TopicT
from mode.utils.queues import FlowControlQueue

from worker.web.metrics import MetricsSensor

QUEUED_FETCHES = 32
"""The fetched lists an inbox holds before the fetcher waits: backpressure."""


class Inbox:
    """The fetched messages of `topic`'s topics, for one task."""

    def __init__(self, app: faust.App, topic: TopicT, sensor: MetricsSensor) -> None:
        self.app = app
        self.topic = topic
        self.sensor = sensor
        self.queue: FlowControlQueue[list[Message]] = FlowControlQueue(
            QUEUED_FETCHES, flow_control=app.flow_control, clear_on_resume=True
        )

    @property
    def names(self) -> frozenset[str]:
        """The names of the topics read."""
        return frozenset(self.topic.topics)

    async def put(self, messages: list[Message]) -> None:
        """Queue one partition's fetched messages, in offset order; waits while the inbox is full."""
        now = time.monotonic()
        for message in messages:
            message.time_in = now
        await self.queue.put(messages)

    async def batches(self, batch_max: int) -> AsyncIterator[list[Message]]:
        """Batches of whole fetched lists, from one list up to about `batch_max` messages.

        Each message is acked once the body that handled its batch returned.
        """
        consumer = self.app.consumer
        while True:
            batch = self._current(await self.queue.get())
            while len(batch) < batch_max and not self.queue.empty():
                batch.extend(self._current(self.queue.get_nowait()))
            if not batch:
                continue
            consumer.unacked.update(batch)
            yield batch
            for message in batch:
                consumer.ack(message)
            self.sensor.handled(batch)

    def _current(self, messages: Sequence[Message]) -> list[Message]:
        """The messages, unless flow is suspended or they were fetched in an older generation (one fetch, one)."""
        if not self.app.flow_control.is_active() or messages[0].generation_id != self.app.consumer_generation_id:
            return []
        return list(messages)
