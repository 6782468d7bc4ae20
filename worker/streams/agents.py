"""The agents: route inputs by customer, then apply them to the ledger.

`ingest` reads the four input topics as raw bytes. It dead-letters what is not
a valid envelope, drops unhandled types (counted), and forwards the rest,
unchanged, to the internal by-customer topic keyed by customer.

`ledger` reads the by-customer topic, which is co-partitioned with the
customers table. For each batch it applies every event to the customer's state
with the pure core, publishes the transactions, summaries and dead letters,
waits for their acks, and only then writes each touched customer's entries
once (its state, and its newest transactions for the API's history), waiting
for those acks too. A crash at any point therefore either replays the
batch from the old state (sending identical records again) or finds the new
state, whose remembered event ids skip the batch.

With `BALANCE_SKIP_REPARTITION` the ledger agent reads the inputs too, and
applies an input event at once when it already sits on its customer's
partition (the one the by-customer topic would put it on); any other event is
forwarded as `ingest` would. The by-customer hop is skipped for producers that
key by customer, and a customer's state still lives on one partition only.
"""

import logging
import time
from collections.abc import Callable

import orjson
from aiokafka.partitioner import DefaultPartitioner
from faust.types import EventT, StreamT

from worker.core.decode import decode
from worker.core.errors import ErrorCode, LedgerError
from worker.core.ledger import Outcome, Result, apply, customer_of, is_handled
from worker.metrics import EVENTS, TRANSACTIONS
from worker.models.dead_letter import dead_letter
from worker.models.events import Envelope
from worker.settings import Settings
from worker.streams.batching import acked_batches
from worker.streams.history import History
from worker.streams.publish import Record
from worker.streams.sinks import Batch, Sink
from worker.streams.source import Source
from worker.streams.tables import CustomerTable, encoded
from worker.streams.topics import Topics

log = logging.getLogger(__name__)


class Pipeline:
    """Per-batch handling of both agents; every failure becomes a dead letter."""

    def __init__(
        self, settings: Settings, topics: Topics, table: CustomerTable, history: History, routed: Sink, applied: Sink
    ) -> None:
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
        self.partitions = list(range(settings.partitions))
        self.partitioner = DefaultPartitioner()

    async def ingest(self, stream: StreamT[bytes]) -> None:
        """Agent body: inputs → by-customer topic (or the DLQ)."""
        await self._run(stream, self.routed, self._route)

    async def ledger(self, stream: StreamT[bytes]) -> None:
        """Agent body: by-customer topic → transactions, summaries, DLQ and the table."""
        await self._run(stream, self.applied, self._apply)

    async def direct(self, stream: StreamT[bytes]) -> None:
        """Agent body with the hop skipped: inputs and the by-customer topic → the ledger's outputs."""
        await self._run(stream, self.applied, self._route_or_apply)

    async def _run(self, stream: StreamT[bytes], sink: Sink, handle: Callable[[EventT[bytes], Batch], None]) -> None:
        """Handle each batch part by part, as the sink splits it, and commit each part through the sink."""
        async for events in acked_batches(stream, self.settings.batch_max):
            for group in sink.groups(events):
                batch = Batch()
                for event in group:
                    handle(event, batch)
                batch.changes = (
                    (self.table.table, encoded(batch.states)),
                    (self.history.table, History.encoded(batch.history)),
                )
                await sink.commit(group, batch)
                self.history.kept(batch.transactions)

    def partition_of(self, customer: bytes) -> int:
        """The by-customer partition of a customer, as the producer's default partitioner (murmur2) picks it."""
        return int(self.partitioner(customer, self.partitions, None))

    def _route(self, event: EventT[bytes], batch: Batch) -> None:
        routed = self._customer(event, batch)
        if routed is not None:
            self._forward(event, routed[0], batch)

    def _route_or_apply(self, event: EventT[bytes], batch: Batch) -> None:
        if event.message.topic == self.by_customer:
            self._apply(event, batch)
            return
        routed = self._customer(event, batch)
        if routed is None:
            return
        customer, envelope = routed
        if self.partition_of(customer) == event.message.partition:
            self._apply_envelope(event, customer, envelope, batch)
        else:
            self._forward(event, customer, batch)

    def _customer(self, event: EventT[bytes], batch: Batch) -> tuple[bytes, Envelope] | None:
        """The customer and envelope of an input event; None once it was dead-lettered, skipped or counted."""
        try:
            envelope = decode(event.message.value, self.settings.max_payload_bytes)
            if not is_handled(envelope.type):
                EVENTS.labels(Outcome.SKIPPED_UNHANDLED, "").inc()
                return None
            customer = customer_of(envelope)
            if customer is None:
                self._count(apply(None, envelope))
                return None
        except Exception as exc:
            self._reject(event, exc, batch)
            return None
        return customer.encode(), envelope

    def _forward(self, event: EventT[bytes], customer: bytes, batch: Batch) -> None:
        header = Source.of(event).header()
        batch.records.append(Record(self.by_customer, customer, event.message.value, header))

    def _apply(self, event: EventT[bytes], batch: Batch) -> None:
        key = event.message.key
        try:
            if key is None:
                raise ValueError("a by-customer record has no key")
            envelope = decode(event.message.value, self.settings.max_payload_bytes)
        except Exception as exc:
            self._reject(event, exc, batch)
            return
        self._apply_envelope(event, key, envelope, batch)

    def _apply_envelope(self, event: EventT[bytes], key: bytes, envelope: Envelope, batch: Batch) -> None:
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
            self._reject(event, exc, batch)
            return
        self._count(result)
        partition = event.message.partition
        if result.state is not None:
            batch.states[key] = (partition, result.state)
        for txn in result.transactions:
            value = txn.model_dump_json().encode()
            batch.records.append(Record(self.transactions, key, value))
            kept = orjson.loads(value)
            self.history.add(batch.history, key, partition, kept)
            batch.transactions.append(kept)
            TRANSACTIONS.labels(txn.type, txn.currency).inc()
        if result.summary is not None:
            batch.records.append(Record(self.summaries, key, result.summary.model_dump_json().encode()))

    def _reject(self, event: EventT[bytes], exc: Exception, batch: Batch) -> None:
        if isinstance(exc, LedgerError):
            code, message = exc.code, exc.message
        else:
            code, message = ErrorCode.INTERNAL_ERROR, f"{type(exc).__name__} while applying the event"
            log.exception(
                "unexpected error on %s[%d]@%d", event.message.topic, event.message.partition, event.message.offset
            )
        source = Source.of(event)
        letter = dead_letter(code, message, source.dead_letter_source(), event.message.value, int(time.time()))
        batch.records.append(Record(self.dlq, source.key, letter.model_dump_json().encode()))
        EVENTS.labels("dlq", code).inc()

    @staticmethod
    def _count(result: Result) -> None:
        EVENTS.labels(result.outcome, "").inc()
