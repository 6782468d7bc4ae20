"""The two readers: route inputs by customer, then apply them to the ledger.

Each reads its topics through an `Inbox`, in batches of raw messages, not
through Faust agents and streams (see `inbox` for why). `ingest` reads the
four input topics. It dead-letters what is not
a valid envelope, drops unhandled types (counted), and forwards the rest,
unchanged, to the internal by-customer topic keyed by customer.

`ledger` reads the by-customer topic, which is co-partitioned with the
customers table. For each batch it applies every event to the customer's state
with the pure core, publishes the transactions, summaries and dead letters,
waits for their acks, and only then writes the changelog record of each
touched customer's state, once, waiting for those acks too, before it acks
the batch. The history's entries (a transaction each, for the API) go with
the outputs: a replay writes them again the same. A crash at any point
therefore either replays the batch from the old state (sending identical
records again) or finds the new state, whose remembered event ids skip the
batch. The next batches are handled meanwhile, from the entries in memory, and
then commit together, in one commit after it.

With `BALANCE_SKIP_REPARTITION` the ledger reads the inputs too, and
applies an input event at once when it already sits on its customer's
partition (the one the by-customer topic would put it on); any other event is
forwarded as `ingest` would. The by-customer hop is skipped for producers that
key by customer, and a customer's state still lives on one partition only.
"""

import asyncio
import logging
import time
from collections.abc import Callable
from typing import cast

import faust
import orjson
from faust.types import Message

from worker.core.decode import decode
from worker.core.errors import ErrorCode, LedgerError
from worker.core.ledger import Outcome, Result, apply, customer_of, is_handled
from worker.metrics import EVENTS, TRANSACTIONS, Tally
from worker.models.dead_letter import dead_letter
from worker.models.events import Envelope
from worker.settings import Settings
from worker.streams.history import History
from worker.streams.inbox import Inbox
from worker.streams.publish import Record, key_hash
from worker.streams.sinks import Batch, Events, Sink, SinkStopped
from worker.streams.source import Source
from worker.streams.tables import CustomerTable, keep
from worker.streams.topics import Topics

log = logging.getLogger(__name__)

WAITING_BATCHES = 3
"""Handled messages waiting for a commit, at most, before the reader waits: this many times `BALANCE_BATCH_MAX`."""


class Waiting:
    """Handled batches waiting to commit, merged into one part per commit key: they commit together."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.batches: list[list[Message]] = []
        self.messages = 0
        self.parts: dict[str, tuple[list[Message], Batch]] = {}
        self.ready = asyncio.Event()
        self.room = asyncio.Event()
        self.room.set()

    def add(self, messages: list[Message], parts: dict[str, tuple[Events, Batch]]) -> None:
        """Queue a handled batch: its messages to ack, and its parts to merge with the waiting ones of their key."""
        self.batches.append(messages)
        self.messages += len(messages)
        for key, (events, batch) in parts.items():
            waiting = self.parts.get(key)
            if waiting is None:
                waiting = self.parts[key] = ([], Batch())
            waiting[0].extend(events)
            waiting[1].absorb(batch)
        self.ready.set()
        if self.messages >= self.limit:
            self.room.clear()

    def take(self) -> tuple[list[list[Message]], list[tuple[list[Message], Batch]]]:
        """Everything waiting (the batches, in order, and the merged parts), which then waits no more."""
        taken = self.batches, list(self.parts.values())
        self.batches, self.messages, self.parts = [], 0, {}
        self.ready.clear()
        self.room.set()
        return taken


class Pipeline:
    """Per-batch handling of both readers; every failure becomes a dead letter."""

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        topics: Topics,
        table: CustomerTable,
        history: History,
        routed: Sink,
        applied: Sink,
    ) -> None:
        self.app = app
        self.crashing: asyncio.Future[None] | None = None
        self.settings = settings
        self.topics = topics
        self.table = table
        self.history = history
        self.routed = routed
        self.applied = applied
        self.by_customer = topics.by_customer.get_topic_name()
        self.transactions = topics.transactions.get_topic_name()
        self.summaries = topics.summaries.get_topic_name()
        self.dlq = topics.dlq.get_topic_name()
        self.tally = Tally()

    async def ingest(self, inbox: Inbox) -> None:
        """Read inputs → by-customer topic (or the DLQ)."""
        await self._run(inbox, self.routed, self._route)

    async def ledger(self, inbox: Inbox) -> None:
        """Read the by-customer topic → transactions, summaries, DLQ and the table."""
        await self._run(inbox, self.applied, self._apply)

    async def direct(self, inbox: Inbox) -> None:
        """Read with the hop skipped: inputs and the by-customer topic → the ledger's outputs."""
        await self._run(inbox, self.applied, self._route_or_apply)

    async def _run(self, inbox: Inbox, sink: Sink, handle: Callable[[Message, Batch], None]) -> None:
        """Handle each batch part by part, as the sink splits it, while the batches before it commit.

        A batch's new entries go to the tables' stores at once, for the next batch to read. The batches handled
        while a commit is in flight wait for it, and then commit together (a group commit): the commit rate
        follows the load, where a commit per batch made the reader wait on a chain of small commits (two
        round trips each) and fall behind a trickle. At most `WAITING_BATCHES` × `BALANCE_BATCH_MAX` messages
        wait; then the reader waits too.
        """
        waiting = Waiting(WAITING_BATCHES * self.settings.batch_max)
        committer = asyncio.create_task(self._commits(inbox, sink, waiting))
        committer.add_done_callback(self._crash_on_error)
        try:
            async for messages in inbox.batches(self.settings.batch_max):
                await waiting.room.wait()
                parts: dict[str, tuple[Events, Batch]] = {}
                for key, group in sink.groups(messages).items():
                    batch = Batch()
                    for message in group:
                        handle(message, batch)
                    batch.early = ((self.history.table, batch.history),)
                    batch.changes = ((self.table.table, self.table.changes(batch.states)),)
                    keep(batch.early)
                    keep(batch.changes)
                    parts[key] = (group, batch)
                self.tally.flush()
                waiting.add(messages, parts)
        finally:
            committer.cancel()

    async def _commits(self, inbox: Inbox, sink: Sink, waiting: Waiting) -> None:
        """Commit whatever waits, one commit at a time: make each part durable, then ack the messages.

        The parts of one commit are independent (each has its own transactional id under exactly_once) and
        commit concurrently.
        """
        while True:
            await waiting.ready.wait()
            batches, parts = waiting.take()
            await asyncio.gather(*(self._commit(sink, events, batch) for events, batch in parts))
            for messages in batches:
                inbox.done(messages)

    async def _commit(self, sink: Sink, events: Events, batch: Batch) -> None:
        await sink.commit(events, batch)
        self.history.kept(batch.transactions)

    def _crash_on_error(self, task: asyncio.Task[None]) -> None:
        """Stop the worker when a commit failed otherwise than by retrying (nothing after it commits), unless
        the worker stops already (`SinkStopped`)."""
        if not task.cancelled() and not isinstance(task.exception(), SinkStopped | None):
            self.crashing = asyncio.ensure_future(self.app.crash(cast(BaseException, task.exception())))

    def partition_of(self, customer: bytes) -> int:
        """The by-customer partition of a customer, as the producer's default partitioner (murmur2) picks it."""
        return key_hash(customer) % self.settings.partitions

    def _route(self, message: Message, batch: Batch) -> None:
        routed = self._customer(message, batch)
        if routed is not None:
            self._forward(message, routed[0], batch)

    def _route_or_apply(self, message: Message, batch: Batch) -> None:
        if message.topic == self.by_customer:
            self._apply(message, batch)
            return
        routed = self._customer(message, batch)
        if routed is None:
            return
        customer, envelope = routed
        if self.partition_of(customer) == message.partition:
            self._apply_envelope(message, customer, envelope, batch)
        else:
            self._forward(message, customer, batch)

    def _customer(self, message: Message, batch: Batch) -> tuple[bytes, Envelope] | None:
        """The customer and envelope of an input event; None once it was dead-lettered, skipped or counted."""
        try:
            envelope = decode(message.value, self.settings.max_payload_bytes)
            if not is_handled(envelope.type):
                self.tally.add(EVENTS, Outcome.SKIPPED_UNHANDLED, "")
                return None
            customer = customer_of(envelope)
            if customer is None:
                self._count(apply(None, envelope))
                return None
        except Exception as exc:
            self._reject(message, exc, batch)
            return None
        return customer.encode(), envelope

    def _forward(self, message: Message, customer: bytes, batch: Batch) -> None:
        header = Source.of(message).header()
        batch.records.append(Record(self.by_customer, customer, message.value, header))

    def _apply(self, message: Message, batch: Batch) -> None:
        key = message.key
        try:
            if key is None:
                raise ValueError("a by-customer record has no key")
            envelope = decode(message.value, self.settings.max_payload_bytes)
        except Exception as exc:
            self._reject(message, exc, batch)
            return
        self._apply_envelope(message, key, envelope, batch)

    def _apply_envelope(self, message: Message, key: bytes, envelope: Envelope, batch: Batch) -> None:
        try:
            pending = batch.states.get(key)
            state = pending[1] if pending else self.table.get(key)
            result = apply(
                state,
                envelope,
                dedupe_retention_s=self.settings.dedupe_retention_s,
                object_retention_s=self.settings.object_retention_s,
            )
        except Exception as exc:
            self._reject(message, exc, batch)
            return
        self._count(result)
        partition = message.partition
        if result.state is None:
            return
        batch.states[key] = (partition, result.state)
        number = result.state.posted - len(result.records)
        for txn in result.records:
            data = orjson.dumps(txn)
            batch.records.append(Record(self.transactions, key, data))
            self.history.add(batch.history, key, partition, number, data)
            number += 1
            batch.transactions.append(txn)
            self.tally.add(TRANSACTIONS, txn["type"], txn["currency"])
        if result.summary_record is not None:
            batch.records.append(Record(self.summaries, key, orjson.dumps(result.summary_record)))

    def _reject(self, message: Message, exc: Exception, batch: Batch) -> None:
        if isinstance(exc, LedgerError):
            code, text = exc.code, exc.message
        else:
            code, text = ErrorCode.INTERNAL_ERROR, f"{type(exc).__name__} while applying the event"
            log.exception("unexpected error on %s[%d]@%d", message.topic, message.partition, message.offset)
        source = Source.of(message)
        letter = dead_letter(code, text, source.dead_letter_source(), message.value, int(time.time()))
        batch.records.append(Record(self.dlq, source.key, letter.model_dump_json().encode()))
        self.tally.add(EVENTS, "dlq", code)

    def _count(self, result: Result) -> None:
        self.tally.add(EVENTS, result.outcome, "")
