"""The consumer's fetch loop: each partition's fetched records go to their inbox as one list.

Faust's `Consumer._drain_messages` hands the conductor one message at a time
and waits for each delivery. Here, the records of a topic read through an
`Inbox` are handed over a partition's fetch at a time, and a fetch's lists for
one inbox all at once, so that its reader takes them in one batch. So are the
records of a changelog partition recovered as an active one, to its table's
store (see `restore`); the records of any other topic (standby changelogs)
still go to the conductor one by one, in one race against a suspension per
partition's fetch. The rest is Faust's loop: the partitions paused during
recovery are not read, a fetch that ends with flow stopped (a rebalance) is
dropped and the partitions seek back to their committed offsets, and so is one
from an older generation, by the inbox.

Faust also records gaps between offsets here, which `AckedCommitConsumer`
does not use (see `offsets`), and end offsets for its own monitor, which
nothing here reads; neither is recorded.
"""

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, cast

from aiokafka.consumer.fetcher import Fetcher
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as driver
from faust.types import TP, Message
from mode import Service, ServiceT
from mode.utils.futures import maybe_async

from worker.settings import Settings
from worker.streams.flow_control import KeepQueuedOnResume
from worker.streams.inbox import Inbox
from worker.streams.metadata import back_off_failed_updates
from worker.streams.offsets import AckedCommitConsumer, EndOffsetsConsumerThread
from worker.streams.restore import restore, skip_trailing_markers

FETCH_TIMEOUT_S = 1.0

BUSY_S = 1.0
"""How long after records were last handed on a fetch still waits for `fetch_min_bytes` of data (see
`wait_when_idle`)."""


class FetchWaitConsumerThread(EndOffsetsConsumerThread):
    """The consumer thread, with the broker's wait for data set by the consumer's `fetch_max_wait_ms`,
    `fetch_min_bytes` and `fetch_idle_wait_ms`, and a backoff after a failed metadata update
    (`back_off_failed_updates`).

    aiokafka keeps one fetch in flight per broker, for the partitions with nothing buffered. When every busy
    partition is still buffered, that fetch holds only idle ones and waits the whole wait (Faust sets 1,500 ms)
    while new events queue on the busy ones. Measured at 4,000 events/s: events reached the worker up to 1.9 s
    after they were produced. So while the worker is reading, a fetch waits `fetch_max_wait_ms` (10 ms), for
    `fetch_min_bytes` of data: answered at its first record, each fetch at 2,000–4,000 events/s held a few
    events, and the worker took 0.77–0.86 of a core reading them, against 0.37–0.53 in fetches of 16 KiB.
    An idle worker's fetch holds every partition, and the broker answers it as soon as any has data, so it may
    wait longer: at 10 ms an idle worker took 7–11% of a core polling, at 250 ms 1% (see `wait_when_idle`).
    """

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        ledger = cast(LedgerConsumer, self.consumer)
        consumer._fetch_max_wait_ms = ledger.fetch_max_wait_ms
        consumer._fetch_min_bytes = ledger.fetch_min_bytes
        back_off_failed_updates(consumer._client)
        return consumer

    async def on_start(self) -> None:
        """Start the consumer, then give its fetcher its waits by how busy the reading is (`wait_when_idle`)."""
        await super().on_start()
        ledger = cast(LedgerConsumer, self.consumer)
        fetcher = self._ensure_consumer()._fetcher
        wait_when_idle(
            fetcher, ledger.fetch_max_wait_ms, ledger.fetch_idle_wait_ms, ledger.fetch_min_bytes, ledger.busy
        )


class InlineConsumerThread(FetchWaitConsumerThread):
    """The consumer "thread" run on the event loop, which is the default (`BALANCE_CONSUMER_THREAD=false`): no
    thread, and each call into it a plain await.

    Faust runs aiokafka in a thread of its own, with its own event loop. Each fetch then crosses threads, and
    each time the consumer thread comes back from its socket while the readers work, it waits for the GIL up to
    `sys.getswitchinterval()` (5 ms). On one core's worth of interpreter that cost the latency: at 13,000
    events/s on a warm Kafka the worker's p50 was 26–34 ms in its thread against 15–22 ms here, and at half its
    bulk rate in the bench 84 / 226 ms (p50 / p99) against 16–17 / 81–82 ms. Here the consumer's tasks, its
    heartbeats among them, share the event loop with the readers, whose batches take milliseconds: a loop that
    stalled for longer than `session_timeout_s` would get the worker evicted from its group.
    """

    def __init__(self, consumer: Any, **kwargs: Any) -> None:
        loop = kwargs.pop("loop")
        super().__init__(consumer, loop=loop, thread_loop=loop, **kwargs)

    async def start(self) -> None:
        """Start the consumer on this loop (`on_start`), with no thread to wait for."""
        self._thread_started.set()
        await self._default_start()

    async def stop(self) -> None:
        """Stop the consumer and this service's tasks here, as the thread does before it ends."""
        if self._started.is_set() and not self._stopped.is_set():
            self._stopped.set()
            await self.on_stop()
            await self._shutdown_thread()
            await self.on_shutdown()

    async def call_thread(self, fun: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call `fun` here."""
        return await maybe_async(fun(*args, **kwargs))

    async def cast_thread(self, fun: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run `fun` in the background here."""
        self.add_future(maybe_async(fun(*args, **kwargs)))


def wait_when_idle(
    fetcher: Fetcher, busy_ms: int, idle_ms: int, min_bytes: int, busy: Callable[[Iterable[TP]], bool]
) -> None:
    """Make each fetch request the fetcher builds wait by how busy the reading is (`busy`, given the partitions
    with records buffered): busy, the broker may hold the request `busy_ms` for `min_bytes` of data; idle,
    `idle_ms` for any data at all (the request then holds every fetchable partition).

    aiokafka reads the wait and the data from `_fetch_max_wait_ms` and `_fetch_min_bytes` as it builds the
    requests (`_get_actions_per_node`), and does so in the consumer's thread (or loop) alone.
    """
    build = fetcher._get_actions_per_node

    def actions(assignment: Any) -> Any:
        waiting = busy(fetcher._records)
        fetcher._fetch_max_wait_ms = busy_ms if waiting else idle_ms
        fetcher._fetch_min_bytes = min_bytes if waiting else 1
        return build(assignment)

    fetcher._get_actions_per_node = actions


class LedgerConsumer(AckedCommitConsumer):
    """`AckedCommitConsumer` whose fetch loop fills the inboxes in bulk."""

    inboxes: Mapping[str, Inbox] = {}
    """The inbox of each topic read in bulk, by topic name."""
    fetch_max_wait_ms = Settings.model_fields["fetch_max_wait_ms"].default
    """How long the broker may hold a fetch sent while records are buffered (see `FetchWaitConsumerThread`)."""
    fetch_min_bytes = Settings.model_fields["fetch_min_bytes"].default
    """The data the broker waits for before it answers a fetch, within the fetch's wait."""
    fetch_idle_wait_ms = Settings.model_fields["fetch_idle_wait_ms"].default
    """How long the broker may hold a fetch sent with no records buffered (see `FetchWaitConsumerThread`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.handed: dict[TP, int] = {}
        """The offset of the last changelog record of each partition handed to Faust's conductor."""
        self.read_at = 0.0
        """When records were last handed on (`time.monotonic`)."""

    def busy(self, buffered: Iterable[TP]) -> bool:
        """Whether records were handed on in the last `BUSY_S`, or are buffered (`buffered`) for an inbox.

        Called by the fetcher, in the consumer thread if there is one. Records buffered for a partition that no
        inbox reads do not count: after a table's recovery its changelog partitions stay assigned, and the last
        records fetched from them (the worker's own writes) stay buffered for good. Counted, they kept an idle
        worker polling every `fetch_max_wait_ms`, at 7–10% of a core.
        """
        return time.monotonic() - self.read_at < BUSY_S or any(tp.topic in self.inboxes for tp in buffered)

    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        """The consumer on the event loop, or in Faust's thread if the app's settings say so."""
        settings = getattr(self.app, "settings", None)
        threaded = isinstance(settings, Settings) and settings.consumer_thread
        kind = FetchWaitConsumerThread if threaded else InlineConsumerThread
        return kind(self, loop=self.loop, beacon=self.beacon)

    def resume_flow(self) -> None:
        """Resume the flow, unless the app's flow control is held (between a revocation and an assignment)."""
        if not cast(KeepQueuedOnResume, self.app.flow_control).held:
            super().resume_flow()

    async def _drain_messages(self, fetcher: ServiceT) -> None:
        """Fetch until the consumer or the fetcher stops, handing each partition's records on."""
        stopped, fetcher_stopped = self._stopped, cast(Service, fetcher)._stopped
        while not (stopped.is_set() or fetcher_stopped.is_set()):
            records, active = await self._wait_next_records(FETCH_TIMEOUT_S)
            await self.sleep(0)
            if self.should_stop:
                continue
            if not records:
                self._past_markers(active)
                continue
            if not self.flow_active:
                await self._seek_back()
                continue
            self.read_at = time.monotonic()
            generation = self.app.consumer_generation_id
            for_inboxes: dict[Inbox, list[list[Message]]] = {}
            for tp, fetched in records.items():
                if not self._flowing(generation):
                    break
                if active is not None and tp not in active and tp not in self._buffered_partitions:
                    continue
                read = self._read_offset[tp]
                messages: list[Message] = [self._to_message(tp, r) for r in fetched if read is None or r.offset >= read]
                if not messages:
                    continue
                inbox = self.inboxes.get(tp.topic)
                if inbox is None:
                    await self._hand_over(messages)
                else:
                    for_inboxes.setdefault(inbox, []).append(messages)
            for inbox, lists in for_inboxes.items():
                if self._flowing(generation):
                    await self._put(inbox, lists, generation)
            self._past_markers(active)

    def _past_markers(self, fetched: set[TP] | None) -> None:
        """After a fetch of the partitions `fetched` is handed on, count a changelog partition read past its
        highwater as recovered (`skip_trailing_markers`).

        Only partitions this fetch was for: they were sought and resumed by the recovery, and every record the
        consumer has returned of them was handed on, so their positions tell what was applied.
        """
        if fetched:
            skip_trailing_markers(self.app, lambda tp: self._position(tp) if tp in fetched else None)

    def _position(self, tp: TP) -> int | None:
        """The consumer's position in `tp` (the offset its next fetch starts from), read from the consumer
        thread's aiokafka consumer, which changes it only in the fetch this loop makes, or in a seek."""
        consumer = self._thread._consumer
        subscription = None if consumer is None else consumer._subscription.subscription
        assignment = None if subscription is None else subscription.assignment
        state = None if assignment is None else assignment.state_value(tp)
        return None if state is None else cast(int | None, state._position)

    def _flowing(self, generation: int) -> bool:
        """Whether records fetched in `generation` may still be handed on: flow is active and no rebalance since."""
        return self.flow_active and self.app.consumer_generation_id == generation

    async def _put(self, inbox: Inbox, lists: list[list[Message]], generation: int) -> None:
        """Put a fetch's lists for an inbox (one per partition) in it together, as far as flow lets them, and
        record them as read if flow went on in `generation` meanwhile.

        Put one by one, with a race against a suspension each, the reader woke up for each list: at 2,000
        events/s it handled about 960 batches of 2 events a second, each with its own per-batch work.

        A rebalance that stops the flow meanwhile forgets the read offsets of its partitions, and the lists
        are dropped. Recorded as read after that, they made the next generation filter the same records out
        of its fetches from the committed offset: the events between were never handled, and later acks
        committed over them (likely why one full `churn` run lost 6 transactions and got 14 wrong).
        """
        await self._maybe_commit()

        async def put_all() -> None:
            for messages in lists:
                await inbox.put(messages)

        await self.wait_first(put_all(), self.suspend_flow.wait())
        if self._flowing(generation):
            for messages in lists:
                self._read_offset[messages[0].tp] = messages[-1].offset

    async def _hand_over(self, messages: list[Message]) -> None:
        """A partition's fetch of a topic no inbox reads: to its table (`restore`) or Faust's conductor."""
        await self._maybe_commit()
        await self.wait_first(self._deliver(messages), self.suspend_flow.wait())

    async def _maybe_commit(self) -> None:
        """Commit once `commit_every` messages were acked since the last commit, as Faust's loop does."""
        if self._commit_every is not None and self._n_acked >= self._commit_every:
            self._n_acked = 0
            await self.commit()

    async def _deliver(self, messages: list[Message]) -> None:
        """Apply a changelog partition's fetch to its table at once while it is recovered as an active one
        (`restore`), or hand the messages to Faust's conductor one by one (standbys, and records that must
        follow those handed over before).

        Faust races each delivery against a suspension of flow (four tasks a message); here one race covers the
        partition's fetch, which a suspension cancels between or within deliveries. With standby replicas, a
        worker applies the other workers' changelogs this way: per message, that cost more than half again
        the CPU per event of two workers over one.
        """
        tp = messages[0].tp
        if restore(self.app, messages, self.handed):
            self._read_offset[tp] = messages[-1].offset
            return
        for message in messages:
            await self.callback(message)
            self._read_offset[tp] = self.handed[tp] = message.offset

    async def _seek_back(self) -> None:
        """Seek to the committed offsets, as Faust does when a fetch ends with flow stopped."""
        try:
            await self.perform_seek()
        except Exception as exc:
            self.log.warning("exception performing seek when flow not active %r", exc)


class StoppingFetcher(faust_consumer.Fetcher):
    """Faust's fetcher service, which ends when its fetch loop is cancelled.

    Faust's takes a cancellation during a rebalance for a restart: it crashes itself and wakes its supervisor,
    which it has none of (`AttributeError`), and the crash reaches the worker. A worker stopped (SIGTERM) while
    it rebalanced exited with code 1 after two tracebacks, seen in the chaos suite's `churn`. A cancellation
    comes from the fetcher's stop, on the worker's stop or a rebalance's, and the rebalance starts it again.
    """

    @Service.task
    async def _fetcher(self) -> None:
        try:
            await cast(LedgerConsumer, self.app.consumer)._drain_messages(self)
        except asyncio.CancelledError:
            self.log.info("Fetch loop cancelled: stopping")
        finally:
            self.set_shutdown()


class LedgerTransport(driver.Transport):
    """The aiokafka transport with `LedgerConsumer` and `StoppingFetcher`."""

    Consumer: ClassVar[type[driver.Consumer]] = LedgerConsumer
    Fetcher: ClassVar[type[ServiceT]] = StoppingFetcher
