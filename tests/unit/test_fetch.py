"""The fetch loop: an inbox topic's fetch goes over as one list, any other topic's message by message."""

import asyncio
import time
from types import SimpleNamespace
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.consumer.fetcher import Fetcher
from aiokafka.structs import ConsumerRecord
from faust.types import TP, Message

from worker.app import LedgerApp, create_app
from worker.settings import Settings
from worker.streams.fetch import (
    BUSY_S,
    FetchWaitConsumerThread,
    InlineConsumerThread,
    LedgerConsumer,
    StoppingFetcher,
    wait_when_idle,
)
from worker.streams.inbox import Inbox

SETTINGS = Settings(
    kafka_bootstrap_servers="127.0.0.1:1", fetch_max_wait_ms=7, fetch_min_bytes=4096, fetch_idle_wait_ms=333
)


def record(tp: TP, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(tp.topic, tp.partition, offset, 0, 0, b"k", b"v", None, 1, 1, ())


def reading() -> tuple[LedgerApp, LedgerConsumer, Inbox]:
    """An app with flow resumed, its consumer, and the inbox of its first source topic."""
    app = create_app(SETTINGS)
    app.flow_control.resume()
    consumer = app.consumer
    assert isinstance(consumer, LedgerConsumer)
    (inbox,) = [i for i in app.inboxes if app.ledger_topics.sources.topics[0] in i.names]
    return app, consumer, inbox


async def test_each_partition_fetch_goes_to_its_inbox_whole_and_other_topics_one_by_one() -> None:
    app, consumer, inbox = reading()
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
    assert time.monotonic() - consumer.read_at < BUSY_S, "records were handed on: the reading is busy"


async def test_a_fetch_of_several_partitions_reaches_the_reader_as_one_batch() -> None:
    """The lists of one fetch are all queued before the reader wakes up, so it handles them in one batch."""
    app, consumer, inbox = reading()
    tps = [TP(topic, partition) for topic in app.ledger_topics.sources.topics[:2] for partition in (0, 3)]
    fetches = [{tp: [record(tp, 7), record(tp, 8)] for tp in tps}]

    async def wait_next_records(timeout: float) -> tuple[Any, set[TP]]:
        if not fetches:
            await asyncio.sleep(0.05)  # the reader runs
            consumer._stopped.set()
            return {}, set()
        return fetches.pop(0), set(tps)

    taken: list[list[tuple[TP, int]]] = []

    async def read() -> None:
        async for batch in inbox.batches(1000):
            taken.append([(m.tp, m.offset) for m in batch])

    consumer._wait_next_records = wait_next_records  # type: ignore[method-assign]
    reader = asyncio.create_task(read())
    await asyncio.wait_for(consumer._drain_messages(consumer), timeout=5)
    reader.cancel()
    assert taken == [[(tp, offset) for tp in tps for offset in (7, 8)]]
    assert all(consumer._read_offset[tp] == 8 for tp in tps)


async def test_the_broker_holds_a_fetch_at_most_fetch_max_wait_ms() -> None:
    """aiokafka's one fetch in flight per broker would otherwise hold events behind Faust's 1,500 ms."""
    app = create_app(SETTINGS)
    worker_consumer = app.consumer._thread._create_worker_consumer(app.transport)  # type: ignore[attr-defined]
    assert worker_consumer._fetch_max_wait_ms == 7
    assert worker_consumer._fetch_min_bytes == 4096


async def test_the_consumer_gets_the_wait_for_a_fetch_sent_with_nothing_buffered() -> None:
    app = create_app(SETTINGS)
    assert isinstance(app.consumer, LedgerConsumer)
    assert (app.consumer.fetch_max_wait_ms, app.consumer.fetch_idle_wait_ms) == (7, 333)


class Position:
    """A partition's fetch state, as aiokafka's assignment gives it: fetchable from `position`."""

    has_valid_position, paused, position = True, False, 42


class Assignment:
    def __init__(self, *tps: TP) -> None:
        self.tps = tps

    def state_value(self, tp: TP) -> Position:
        return Position()


class Buffered:
    """Records of a partition not yet consumed, past their backoff."""

    def calculate_backoff(self) -> int:
        return 0


def fetcher() -> Any:
    """aiokafka's `Fetcher`, not started, with what building its fetch requests reads."""
    f: Any = object.__new__(Fetcher)
    f._records, f._in_flight, f._preferred_read_replica = {}, set(), {}
    f._client = SimpleNamespace(cluster=SimpleNamespace(leader_for_partition=lambda tp: 1))
    f._fetch_max_wait_ms, f._fetch_min_bytes = 500, 1
    f._fetch_max_bytes = f._max_partition_fetch_bytes = 1 << 20
    f._isolation_level, f._client_rack, f._fetcher_timeout = 0, None, 0.2
    return f


def test_a_busy_fetch_waits_for_data_briefly_and_an_idle_one_for_any_data_longer() -> None:
    a, b = TP("t", 0), TP("t", 1)
    f = fetcher()
    busy = False
    wait_when_idle(f, busy_ms=10, idle_ms=250, min_bytes=4096, busy=lambda buffered: busy or a in buffered)
    ((_, idle),), *_ = f._get_actions_per_node(Assignment(a, b))
    assert (idle._max_wait_ms, idle._min_bytes) == (250, 1)
    assert sorted(p for _, ps in idle.topics for p, _, _ in ps) == [0, 1]
    f._records[a] = Buffered()
    ((_, buffered),), *_ = f._get_actions_per_node(Assignment(a, b))
    assert (buffered._max_wait_ms, buffered._min_bytes) == (10, 4096)
    assert [p for _, ps in buffered.topics for p, _, _ in ps] == [1], "a is buffered"
    del f._records[a]
    busy = True
    ((_, reading),), *_ = f._get_actions_per_node(Assignment(a, b))
    assert (reading._max_wait_ms, reading._min_bytes) == (10, 4096)


def test_the_reading_is_busy_for_a_while_after_records_and_while_an_inbox_has_records_buffered() -> None:
    app, consumer, _ = reading()
    source = TP(app.ledger_topics.sources.topics[0], 0)
    changelog = TP(f"{app.conf.id}-customers-changelog", 0)
    assert not consumer.busy([])
    assert not consumer.busy([changelog]), "a changelog's last records stay buffered after its recovery"
    assert consumer.busy([source])
    consumer.read_at = time.monotonic()
    assert consumer.busy([])
    consumer.read_at = time.monotonic() - BUSY_S - 0.1
    assert not consumer.busy([changelog])


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


async def test_a_fetch_loop_cancelled_while_the_worker_rebalances_ends_the_fetcher_without_a_crash() -> None:
    app, consumer, _ = reading()
    fetcher = app._fetcher
    assert isinstance(fetcher, StoppingFetcher)
    fetching = asyncio.Event()

    async def wait_next_records(timeout: float) -> tuple[Any, set[TP]]:
        fetching.set()
        await asyncio.Event().wait()
        raise AssertionError("not reached")

    consumer._wait_next_records = wait_next_records  # type: ignore[method-assign]
    app.rebalancing = True
    task = asyncio.ensure_future(fetcher._fetcher.fun(fetcher))  # type: ignore[attr-defined]
    await fetching.wait()
    task.cancel()
    await asyncio.wait_for(task, timeout=5)

    assert task.exception() is None and not fetcher._crashed.is_set(), "Faust's crashed on its missing supervisor"
    assert fetcher._shutdown.is_set()


async def test_lists_whose_put_a_rebalance_interrupts_are_not_recorded_as_read() -> None:
    """The revocation forgets the read offsets, then stops the flow; a put waiting for flow then returns, and
    recording its lists as read would filter them out of the next generation's fetch from the committed offset.
    """
    app, consumer, inbox = reading()
    tp = TP(app.ledger_topics.sources.topics[0], 0)
    fetches = [{tp: [record(tp, 7), record(tp, 8)]}]
    revoked = asyncio.Event()

    async def wait_next_records(timeout: float) -> tuple[Any, set[TP]]:
        if fetches:
            return fetches.pop(0), {tp}
        await revoked.wait()
        consumer._stopped.set()
        return {}, set()

    consumer._wait_next_records = wait_next_records  # type: ignore[method-assign]
    app.flow_control.suspend()  # the put waits for flow (as it does while a recovery holds it)
    drain = asyncio.create_task(consumer._drain_messages(consumer))
    for _ in range(20):
        await asyncio.sleep(0)
    assert inbox.queue.empty() and not drain.done(), "the put waits"
    consumer._read_offset.pop(tp, None)  # what the revocation does first,
    consumer.stop_flow()  # then it stops the flow
    revoked.set()
    await asyncio.wait_for(drain, timeout=5)

    assert consumer._read_offset[tp] is None, "recorded as read, offsets 7 and 8 would be skipped when fetched again"


def test_only_the_partitions_a_fetch_was_for_count_as_read_past_their_highwater() -> None:
    app, consumer, _ = reading()
    recovery: Any = app.tables.recovery
    changelog = f"{app.conf.id}-customers-changelog"
    fetched, other = TP(changelog, 0), TP(changelog, 1)
    recovery.in_recovery = True
    recovery.active_tps = {fetched, other}
    recovery.active_highwaters.update({fetched: 4, other: 4})
    recovery.active_offsets.update({fetched: 2, other: 2})
    consumer._position = {fetched: 5, other: 5}.get  # type: ignore[method-assign]
    consumer._past_markers({fetched})
    assert dict(recovery.active_offsets) == {fetched: 4, other: 2}, "the other's position may predate its seek"
    assert recovery.in_recovery


async def test_a_partition_s_position_is_read_from_the_consumer_thread_s_aiokafka_consumer() -> None:
    _, consumer, _ = reading()
    tp, unassigned = TP("t", 0), TP("t", 1)
    assert consumer._position(tp) is None, "no aiokafka consumer yet"
    kafka = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1")
    consumer._thread._consumer = kafka
    kafka.assign([tp])
    assert consumer._position(tp) is None, "assigned, not sought"
    kafka._subscription.subscription.assignment.state_value(tp).seek(7)  # what a started consumer's seek does
    assert consumer._position(tp) == 7 and consumer._position(unassigned) is None
    await kafka.stop()


async def test_the_consumer_runs_on_the_event_loop_unless_told_to_run_in_its_own_thread() -> None:
    inline = create_app(SETTINGS).consumer._thread
    assert isinstance(inline, InlineConsumerThread) and inline.thread_loop is inline.loop
    seen: list[tuple[int, int]] = []
    await inline.call_thread(lambda a, b: seen.append((a, b)), 1, 2)
    assert seen == [(1, 2)], "called at once, on this loop"

    threaded = create_app(SETTINGS.model_copy(update={"consumer_thread": True})).consumer._thread
    assert isinstance(threaded, FetchWaitConsumerThread) and not isinstance(threaded, InlineConsumerThread)
