"""Where a handled batch goes: its records, its table entries and, last, its acks.

`AckedSink` (at_least_once) publishes the records, with the history's
entries, and waits for their acks, then writes the states' entries and waits
for those: a state's changelog record is the commit point, and a replay sends
only identical records and history entries.

`TransactionalSink` (exactly_once) puts each source partition's records, table
entries and consumed offsets in one Kafka transaction, so a `read_committed`
reader sees every effect of an event once or not at all. Faust's own
exactly-once mode cannot do this: it picks the transaction of a record by the
record's *destination* partition, so outputs and the offsets of the events
that caused them commit in different transactions (measured: 148 duplicates in
5,000 events over 2 kills). Each transactional id belongs to one source
partition of one reader (Faust assigns a topic group's partitions together), so the next
owner of a partition fences the producer of the last one; a fenced worker
stops rather than write from state that is no longer its own.
"""

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import faust
from aiokafka import AIOKafkaProducer
from aiokafka.errors import ProducerFenced
from faust.types import TP, Message

from worker.core.state import CustomerState
from worker.kafka_security import aiokafka_security
from worker.settings import Settings
from worker.streams.history import Transaction
from worker.streams.metadata import back_off_failed_updates
from worker.streams.publish import Record, publish_batched, retrying, send_batched
from worker.streams.tables import Changes, Entries, changelog_records
from worker.streams.topics import DLQ_MAX_MESSAGE_BYTES, admin_client

log = logging.getLogger(__name__)

Events = Sequence[Message]


@dataclass
class Batch:
    """The records one batch of input sends, the table entries it writes, and what they are made from.

    Sinks send `records` with the `early` entries, and then write `changes`, the commit point; the reader
    fills the rest while it handles the batch. Early entries are the history's: a replay from the old state
    writes them again the same, so they may be durable before the records are, and once the state is
    durable they are too.
    """

    records: list[Record] = field(default_factory=list)
    early: Changes = ()
    changes: Changes = ()
    states: dict[bytes, tuple[int, CustomerState]] = field(default_factory=dict)
    history: Entries = field(default_factory=dict)
    transactions: list[Transaction] = field(default_factory=list)

    def absorb(self, later: "Batch") -> None:
        """Take on a later batch's records, entries and transactions, to commit as one; its entries win."""
        self.records.extend(later.records)
        self.transactions.extend(later.transactions)
        self.early = _merged(self.early, later.early)
        self.changes = _merged(self.changes, later.changes)

    def outputs(self) -> list[Record]:
        """The records and the early entries' changelog records: what is sent first."""
        return [*self.records, *changelog_records(self.early)]


def _merged(changes: Changes, later: Changes) -> Changes:
    """`changes` with the later entries of each table added (the later win): `changes` is updated in place once
    it is a batch's own copy (when it is not empty)."""
    if not changes:
        return tuple((table, dict(entries)) for table, entries in later)
    for (_, entries), (_, newer) in zip(changes, later, strict=True):
        entries.update(newer)
    return changes


class Fenced(BaseException):
    """Another worker owns a transactional id of this one: the worker must stop, writing nothing more.

    Not an `Exception`, which `retrying` would retry, and not a `SystemExit`, which asyncio raises out of the
    event loop: the worker then waited at exit for Faust's consumer thread, which nothing stopped, and hung.
    A reader's commit task that ends with it crashes the app (`Pipeline`), which stops, and the command exits
    with `FENCED_EXIT_CODE`.
    """


FENCED_EXIT_CODE = 3


class SinkStopped(BaseException):
    """The sink was stopped, with the worker: it starts no producer, and a commit still retrying ends.

    The worker's readers run until after the sinks stop and the consumer leaves the group. A commit that failed
    then, and retried, started a new producer: under exactly_once its start could fence the partition's next
    owner after that owner's claim, and its transaction, from this worker's old state, would then commit after
    the new owner's. Not an `Exception`, which `retrying` would retry; the reader's commit task ends with it,
    its events unacked for the next owner to read.
    """


class Sink(Protocol):
    """Makes a handled batch durable; its events may be acked once `commit` returns."""

    committed_topics: frozenset[str]
    """The consumed topics whose offsets the sink commits itself (Faust commits the others)."""

    def groups(self, events: Events) -> dict[str, Events]:
        """The batch split into the parts that commit apart, in order within each, by a key: parts of later
        batches with the same key may commit with them."""
        ...

    async def commit(self, events: Events, batch: Batch) -> None:
        """Make one part's effects durable."""
        ...

    async def claim(self, assigned: set[TP]) -> None:
        """Take ownership of newly assigned partitions, before their state is recovered."""
        ...

    async def stop(self) -> None:
        """Release what the sink holds."""
        ...


class AckedSink:
    """at_least_once: outputs (and the early entries) acked first, then the states' entries."""

    committed_topics: frozenset[str] = frozenset()

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer: AIOKafkaProducer | None = None

    def groups(self, events: Events) -> dict[str, Events]:
        """The whole batch commits together."""
        return {"": events}

    async def commit(self, events: Events, batch: Batch) -> None:
        """Publish the outputs and wait, then write the states' entries and wait."""
        assert self.producer is not None, "a batch commits only after the claim of its partitions"
        await publish_batched(self.producer, batch.outputs())
        await publish_batched(self.producer, changelog_records(batch.changes))

    async def claim(self, assigned: set[TP]) -> None:
        """Start the producer on the first assignment; nothing is fenced under at_least_once."""

        async def start() -> None:
            self.producer = await start_producer(self.settings)

        if self.producer is None:  # the broker may be restarting: retry until it answers
            await retrying(start, "starting the producer", counted=False)

    async def stop(self) -> None:
        """Close the producer."""
        if self.producer is not None:
            await self.producer.stop()


class TransactionalSink:
    """exactly_once: one transaction per source partition of a batch, holding its offsets too."""

    def __init__(self, name: str, app: faust.App, settings: Settings, topics: frozenset[str]) -> None:
        self.name = name
        self.committed_topics = topics
        self.app = app
        self.settings = settings
        self.producers: dict[str, AIOKafkaProducer] = {}
        self.locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.owners: dict[TP, str] = {}
        self.next_offsets: dict[TP, int] = {}
        """Per owned partition, the offset after the last event taken (from the committed offset at the claim)."""
        self.partition_counts: dict[str, int] = {}
        """Each committed topic's partition count, read at the first claim: it names the topic's group."""
        self.stopped = False
        # mode types handlers with a `signal` argument named by a string annotation that mypy cannot match
        app.on_partitions_revoked.connect(cast(Any, self.on_revoked))

    def transactional_id(self, tp: TP) -> str:
        """This reader's id for whoever owns `tp`'s partition of its topic group, the same in every generation.

        Faust assigns partition p of every topic in a group (all co-subscribed topics with the same partition
        count, so all of ours) to one worker; each reader needs its own id, or two producers would fence each
        other. The group is named by its partition count, not by Faust's number for it. Faust numbers the groups
        by their place among the partition counts of the topics in the metadata at each assignment, and its own
        one-partition leader topic is missing from the first: the ledger's partitions were group 0 in the first
        generation and group 1 after it. The next owner's producer then neither fenced the first owner's nor
        completed its open transaction (the chaos suite's `eos-churn`, seed 35: 185 transactions lost, 23
        twice, 1,650 wrong).
        """
        return f"{self.app.conf.id}-{self.name}-{tp.partition}-of-{self.partition_counts[tp.topic]}"

    def groups(self, events: Events) -> dict[str, Events]:
        """The batch split by transactional id, in order within each.

        Left out, and acked without effect (the sinks commit these topics' offsets, not Faust):
        - an event of a partition this worker does not own (a stale one from before a rebalance): its owner
          handles it;
        - an event below the next offset of its partition: Faust delivered it again. At the end of recovery
          Faust resumes the partitions, then fetches the committed offsets and seeks to them, while events
          from the position before the seek already flow; the seek then replays them, within a batch or in
          the next. Measured: a dead letter (which no state remembers) twice in 5 of 5 runs with two
          kill -9s, and forwarded events twice on the by-customer topic.

        - an event fetched before the last rebalance: the flow reads it again from the committed offset. A
          reader may take a batch, wait for room, and split it only after the next generation's claim, which
          sets each partition's next offset from the committed one. Taken then, such an event moved the next
          offset past events not yet read in the new flow, and the check below skipped those as repeats: they
          were acked without effect and later offsets committed over them (likely the loss in the chaos
          suite's `eos-churn`, seed 58: 431 transactions, no duplicate).

        Each flow is gap-free from a position at or below the committed offset (aiokafka starts a newly
        assigned partition at the committed offset it fetched, possibly before the claim completed the last
        transaction, so stale and lower, never higher), so skipping below the next offset drops only repeats.
        """
        by_id: dict[str, list[Message]] = defaultdict(list)
        generation = self.app.consumer_generation_id
        for message in events:
            tp, offset = message.tp, message.offset
            tid = self.owners.get(tp)
            if tid is None:
                log.debug("skipping an event of %s, a partition this worker does not own", tp)
                continue
            if message.generation_id != generation:
                log.debug("skipping %s@%d: fetched before the last rebalance", tp, offset)
                continue
            if offset < self.next_offsets.get(tp, 0):
                log.debug("skipping %s@%d: taken already", tp, offset)
                continue
            self.next_offsets[tp] = offset + 1
            by_id[tid].append(message)
        return dict(by_id)

    async def claim(self, assigned: set[TP]) -> None:
        """Start the producers of the assigned partitions before Faust recovers their state and seeks.

        Starting a producer fences its previous owner and completes that owner's last transaction: a commit
        still writing its markers, or an open transaction, which is aborted. Recovery and the offset fetch
        then see every committed effect. Without this, a partition moved right after a commit could be read
        back without that commit's changelog entries and offsets (they are not yet stable), and its events
        applied again: one duplicate in a 50,000-event scale run. The committed offsets, stable now, are
        where each partition's next event is taken from.

        The partitions are owned (`groups` takes their events) only once all that is done: owned from the
        start, a partition's events could be taken before its next offset was known, from any offset (the
        chaos suite's `eos-churn`, seed 78, with flow resumed too early: see `KeepQueuedOnResume`).
        """
        claimed = [tp for tp in assigned if tp.topic in self.committed_topics]
        if claimed and not self.partition_counts:
            await retrying(self._count_partitions, "describing the topics", counted=False)
        tids = {tp: self.transactional_id(tp) for tp in claimed}

        async def start(tid: str) -> None:
            async with self.locks[tid]:  # the broker may be restarting: retry until it answers
                with contextlib.suppress(SinkStopped):  # a claim while the worker stops starts nothing
                    await retrying(lambda: self._producer(tid), f"starting producer {tid}", counted=False)

        async def fetch() -> None:
            async with admin_client(self.settings.kafka_bootstrap_servers, aiokafka_security(self.settings)) as admin:
                committed = await admin.list_consumer_group_offsets(self.app.conf.id, partitions=claimed)
            for tp in claimed:
                found = committed.get(tp)
                self.next_offsets[tp] = max(0, found.offset) if found is not None else 0
            log.debug(
                "claimed %s from %s",
                sorted(set(tids.values())),
                {f"{tp.topic}[{tp.partition}]": self.next_offsets[tp] for tp in claimed},
            )

        await asyncio.gather(*(start(tid) for tid in {*self.owners.values(), *tids.values()}))
        if claimed:
            await retrying(fetch, "fetching committed offsets", counted=False)
        self.owners.update(tids)

    async def commit(self, events: Events, batch: Batch) -> None:
        """Send the records, the entries' changelog records and the offsets in one transaction."""
        offsets: dict[TP, int] = {}
        for message in events:
            tp = message.tp
            offsets[tp] = max(offsets.get(tp, 0), message.offset + 1)
        tid = self.owners[events[0].tp]
        if log.isEnabledFor(logging.DEBUG):  # the trail a lost or repeated event is traced by
            log.debug("transaction %s: %s", tid, offset_ranges(events))

        async def attempt() -> None:
            try:
                await self._transact(tid, batch.outputs(), batch.changes, offsets)
            except ProducerFenced:
                log.error("transactional id %s was fenced: another worker owns its partition; stopping", tid)
                await self._drop(tid)
                raise Fenced(tid) from None
            except Exception:  # retried with a new producer, whose start aborts the open transaction
                await self._drop(tid)
                raise

        async with self.locks[tid]:
            await retrying(attempt, f"transaction {tid}")

    async def _transact(self, tid: str, records: Sequence[Record], changes: Changes, offsets: dict[TP, int]) -> None:
        producer = await self._producer(tid)
        async with producer.transaction():
            # aiokafka ends a transaction without waiting for its records: a record still being
            # retried would land after the commit marker, outside the transaction
            await asyncio.gather(*await send_batched(producer, [*records, *changelog_records(changes)]))
            await producer.send_offsets_to_transaction(offsets, self.app.conf.id)

    async def _count_partitions(self) -> None:
        """Read each committed topic's partition count (see `transactional_id`)."""
        async with admin_client(self.settings.kafka_bootstrap_servers, aiokafka_security(self.settings)) as admin:
            described = await admin.describe_topics(sorted(self.committed_topics))
        counts = {t["topic"]: len(t["partitions"]) for t in described}
        missing = self.committed_topics - {topic for topic, count in counts.items() if count}
        if missing:
            raise LookupError(f"no partitions described for {sorted(missing)}")
        self.partition_counts = counts

    async def _producer(self, tid: str) -> AIOKafkaProducer:
        """The started producer of `tid`; none once the sink is stopped (`SinkStopped`)."""
        producer = self.producers.get(tid)
        if producer is None:
            if self.stopped:
                raise SinkStopped(tid)
            producer = await start_producer(self.settings, transactional_id=tid)
            if self.stopped:  # stopped while this one started
                await producer.stop()
                raise SinkStopped(tid)
            self.producers[tid] = producer
        return producer

    async def _drop(self, tid: str) -> None:
        producer = self.producers.pop(tid, None)
        if producer is not None:
            await producer.stop()

    async def on_revoked(self, sender: object, *args: Any, **kwargs: Any) -> None:
        """Close the producers of revoked partitions (Faust acked their events first); the next owner fences them.

        Connected to `app.on_partitions_revoked`, which sends the revoked partitions as the first argument.
        """
        revoked: set[TP] = args[0]
        for tp in revoked:
            self.next_offsets.pop(tp, None)
        for tid in {self.owners.pop(tp) for tp in revoked if tp in self.owners}:
            async with self.locks[tid]:
                await self._drop(tid)

    async def stop(self) -> None:
        """Close every producer, and start none after."""
        self.stopped = True
        for tid in list(self.producers):
            await self._drop(tid)


def offset_ranges(events: Events) -> dict[str, list[int]]:
    """Each partition's offsets in `events`, as `topic[partition]`: [first, last, count]."""
    ranges: dict[str, list[int]] = {}
    for message in events:
        found = ranges.get(name := f"{message.topic}[{message.partition}]")
        if found is None:
            ranges[name] = [message.offset, message.offset, 1]
        else:
            found[1] = message.offset
            found[2] += 1
    return ranges


async def start_producer(settings: Settings, transactional_id: str | None = None) -> AIOKafkaProducer:
    """A started producer for the sinks: every record acknowledged by all in-sync replicas, and a backoff after a
    failed metadata update (`back_off_failed_updates`).

    No linger: the sinks send closed batches (`send_batched`), which aiokafka sends at once.
    """
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        transactional_id=transactional_id,
        acks="all",
        max_batch_size=1024 * 1024,
        max_request_size=DLQ_MAX_MESSAGE_BYTES + 1024 * 1024,
        request_timeout_ms=30_000,
        **aiokafka_security(settings),
    )
    back_off_failed_updates(producer.client)
    try:
        await producer.start()
    except BaseException:
        await producer.stop()
        raise
    return producer


def sink_for(name: str, app: faust.App, settings: Settings, topics: Iterable[str]) -> Sink:
    """The sink the processing guarantee asks for, for the reader `name` of `topics`."""
    if settings.processing_guarantee == "exactly_once":
        return TransactionalSink(name, app, settings, frozenset(topics))
    return AckedSink(settings)
