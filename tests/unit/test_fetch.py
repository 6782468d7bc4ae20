"""The fetch loop: an inbox topic's fetch goes over as one list, any other topic's message by message."""

import asyncio
from typing import Any

from aiokafka.structs import ConsumerRecord
from faust.types import TP, Message

from worker.app import create_app
from worker.settings import Settings
from worker.streams.fetch import LedgerConsumer

SETTINGS = Settings(kafka_bootstrap_servers="127.0.0.1:1", fetch_max_wait_ms=7, fetch_min_bytes=4096)


def record(tp: TP, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(tp.topic, tp.partition, offset, 0, 0, b"k", b"v", None, 1, 1, ())


async def test_each_partition_fetch_goes_to_its_inbox_whole_and_other_topics_one_by_one() -> None:
    app = create_app(SETTINGS)
    app.flow_control.resume()
    consumer = app.consumer
    assert isinstance(consumer, LedgerConsumer)
    (inbox,) = [i for i in app.inboxes if app.ledger_topics.sources.topics[0] in i.names]
    source, paused = TP(app.ledger_topics.sources.topics[0], 0), TP(app.ledger_topics.sources.topics[0], 1)
    changelog = TP(f"{app.conf.id}-customers-changelog", 0)
    fetches = [
        {source: [record(source, 5), record(source, 6)], changelog: [record(changelog, 0), record(changelog, 1)]},
        {paused: [record(paused, 0)]},
    ]
    delivered: list[Message] = []

    async def wait_next_records(timeout: float) -> tuple[Any, set[TP]]:
        if not fetches:
            consumer._stopped.set()
            return {}, set()
        return fetches.pop(0), {source, changelog}

    async def callback(message: Message) -> None:
        delivered.append(message)

    consumer._wait_next_records = wait_next_records  # type: ignore[method-assign]
    consumer.callback = callback
    await asyncio.wait_for(consumer._drain_messages(consumer), timeout=5)

    lists = []
    while not inbox.queue.empty():
        lists.append([(m.tp, m.offset) for m in inbox.queue.get_nowait()])
    assert lists == [[(source, 5), (source, 6)]], "one list per partition fetch, the paused partition left out"
    assert [(m.tp, m.offset) for m in delivered] == [(changelog, 0), (changelog, 1)]
    assert consumer._read_offset[source] == 6


async def test_the_broker_holds_a_fetch_at_most_fetch_max_wait_ms() -> None:
    """aiokafka's one fetch in flight per broker would otherwise hold events behind Faust's 1,500 ms."""
    app = create_app(SETTINGS)
    worker_consumer = app.consumer._thread._create_worker_consumer(app.transport)  # type: ignore[attr-defined]
    assert worker_consumer._fetch_max_wait_ms == 7
    assert worker_consumer._fetch_min_bytes == 4096


async def test_a_suspension_stops_a_changelog_fetch_between_or_within_deliveries() -> None:
    """One race against a suspension covers a partition's changelog fetch; what was delivered counts as read."""
    app = create_app(SETTINGS)
    app.flow_control.resume()
    consumer = app.consumer
    assert isinstance(consumer, LedgerConsumer)
    changelog = TP(f"{app.conf.id}-customers-changelog", 0)
    delivered: list[int] = []
    blocked = asyncio.Event()

    async def callback(message: Message) -> None:
        if message.offset == 1:
            blocked.set()
            await asyncio.Event().wait()  # a full queue, say
        delivered.append(message.offset)

    consumer.callback = callback
    messages = [consumer._to_message(changelog, record(changelog, offset)) for offset in range(3)]
    handing = asyncio.create_task(consumer._hand_over(messages))
    await asyncio.wait_for(blocked.wait(), 5)
    assert not handing.done()
    consumer.suspend_flow.set()
    await asyncio.wait_for(handing, 5)
    assert delivered == [0], "the rest waits for the seek back"
    assert consumer._read_offset[changelog] == 0
