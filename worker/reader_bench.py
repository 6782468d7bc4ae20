"""`balance-worker reader-bench`: the ledger's reader alone, in one process, over the bench's stream.

No broker. The stream sits on its customers' partitions, keyed by customer as `BALANCE_SKIP_REPARTITION`
wants it, and goes to the reader (`Pipeline.direct`) in batches of `--batch`. Each commit goes through
at_least_once's sink, whose `send_batched` builds its produce batches; a producer that is never started drops
them, as if the broker acked them at once. It prints JSON, with the reader's CPU time per event: the part of
the worker's cost that the broker and the machine's neighbours do not move, so that code changes can be
compared by it (`bench` measures the whole worker on a broker).
"""

import argparse
import asyncio
import gc
import json
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import faust
from aiokafka import AIOKafkaProducer
from aiokafka.producer.message_accumulator import BatchBuilder
from faust.types import TP, Message

from worker.cli import GC_THRESHOLDS
from worker.sample import mixed
from worker.settings import Settings
from worker.streams.history import History
from worker.streams.pipeline import Pipeline
from worker.streams.publish import key_hash
from worker.streams.sinks import AckedSink
from worker.streams.tables import CustomerTable
from worker.streams.topics import build_topics

BATCH_BYTES = 1024 * 1024
"""The sinks' producers' `max_batch_size`."""


class MemoryInbox:
    """Yields the prepared batches, then waits; counts the messages acked, and sets `all_acked` once every
    prepared message is."""

    def __init__(self, batches: Sequence[list[Message]]) -> None:
        self.prepared = batches
        self.count = sum(len(batch) for batch in batches)
        self.acked = 0
        self.all_acked = asyncio.Event()

    async def batches(self, batch_max: int) -> AsyncIterator[list[Message]]:
        """Each prepared batch, then nothing ever again."""
        for batch in self.prepared:
            yield batch
        await asyncio.Event().wait()

    def done(self, messages: Sequence[Message]) -> None:
        """Count the acked messages."""
        self.acked += len(messages)
        if self.acked >= self.count:
            self.all_acked.set()


class DroppingProducer(AIOKafkaProducer):  # type: ignore[misc]  # aiokafka is untyped
    """A producer that is never started: `send_batched` builds its batches as the sinks' producers would
    (`start_producer`'s batch size), and each is dropped once built, as if the broker acked it."""

    def __init__(self, partitions: int) -> None:
        super().__init__(bootstrap_servers="127.0.0.1:1", max_batch_size=BATCH_BYTES)
        self.partition_set = set(range(partitions))
        self.records = 0

    async def partitions_for(self, topic: str) -> set[int]:
        """Every topic has the settings' partitions."""
        return self.partition_set

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int) -> asyncio.Future[None]:
        """Build the batch, count its records and drop it: its ack is at once."""
        batch._build()
        self.records += batch.record_count()
        acked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        acked.set_result(None)
        return acked


def stream(settings: Settings, events: int, customers: int) -> list[Message]:
    """The bench's stream (seed 1) as messages on the invoices topic, each on its customer's partition."""
    topic, partitions = settings.topic_invoice_events, settings.partitions
    offsets = [0] * partitions
    messages = []
    for key, value in mixed(events, customers=customers, seed=1):
        partition = key_hash(key) % partitions
        tp = TP(topic, partition)
        messages.append(Message(topic, partition, offsets[partition], time.time(), 0, [], key, value, None, tp=tp))
        offsets[partition] += 1
    return messages


async def run(events: int, customers: int, batch: int) -> dict[str, Any]:
    """Read the stream once; the report."""
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:1", skip_repartition=True, batch_max=batch)
    app = faust.App("reader-bench", broker="kafka://127.0.0.1:1")
    table = CustomerTable(app, settings.partitions, settings.state_cache)
    history = History(app, settings.partitions, settings.history_limit, table)
    sink = AckedSink(settings)  # at_least_once's commit, through a producer that drops what it sends
    producer = sink.producer = DroppingProducer(settings.partitions)
    pipeline = Pipeline(app, settings, build_topics(app, settings), table, history, sink, sink)
    messages = stream(settings, events, customers)
    inbox = MemoryInbox([messages[i : i + batch] for i in range(0, len(messages), batch)])
    threshold = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)  # as the worker runs (`cli`)
    try:
        cpu, wall = await read_all(pipeline, inbox)
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()
        await producer.stop()
    return {
        "events": len(messages),
        "customers": customers,
        "batch": batch,
        "records": producer.records,
        "cpu_us_per_event": round(cpu * 1e6 / len(messages), 1),
        "events_per_cpu_s": round(len(messages) / cpu),
        "wall_s": round(wall, 2),
    }


async def read_all(pipeline: Pipeline, inbox: MemoryInbox) -> tuple[float, float]:
    """Run the reader until every message is acked; its CPU and wall-clock seconds."""
    started, cpu = time.perf_counter(), time.process_time()
    reader = asyncio.create_task(pipeline.direct(inbox))  # type: ignore[arg-type]  # the reader's part of an Inbox
    acked = asyncio.create_task(inbox.all_acked.wait())
    try:
        await asyncio.wait((reader, acked), return_when=asyncio.FIRST_COMPLETED)
        if not acked.done():
            reader.result()
            raise RuntimeError("the reader stopped before every event was acked")
        return time.process_time() - cpu, time.perf_counter() - started
    finally:
        reader.cancel()
        acked.cancel()


def main(argv: list[str]) -> None:
    """`balance-worker reader-bench [--events N] [--customers N] [--batch N]`."""
    parser = argparse.ArgumentParser(prog="balance-worker reader-bench", description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=Settings.model_fields["batch_max"].default)
    options = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run(options.events, options.customers, options.batch))), flush=True)
