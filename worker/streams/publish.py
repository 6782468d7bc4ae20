"""Send records and wait for the broker's acks, retrying until they land.

A failed send must not escape a reader's batch (the worker would stop), so it
is retried with backoff. A retry may send a record again, but always an
identical one.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner, murmur2
from aiokafka.producer.message_accumulator import BatchBuilder
from faust.types import ProducerT

from worker.metrics import PUBLISH_RETRIES

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 5.0


class Record(NamedTuple):
    """One record to send, to a topic by name (and to a partition, or by its key when None).

    A tuple, not a dataclass: several are made per event, and a tuple is made several times faster.
    """

    topic: str
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes] | None = None
    partition: int | None = None


async def retrying(attempt: Callable[[], Awaitable[object]], what: str, *, counted: bool = True) -> None:
    """Run `attempt` until it returns, backing off between failures; a failure is retried, never dropped.

    Cancellation and `BaseException`s such as `SystemExit` pass through; `counted` retries add to
    `balance_publish_retries`.
    """
    backoff = 0.1
    while True:
        try:
            await attempt()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if counted:
                PUBLISH_RETRIES.inc()
            log.warning("%s failed (%s: %s); retrying in %.1fs", what, type(exc).__name__, exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)


async def until_acked(send_all: Callable[[], Awaitable[Sequence[Any]]], what: str) -> None:
    """Run `send_all` (which returns futures of broker acks) until every ack arrives."""

    async def attempt() -> None:
        await asyncio.gather(*await send_all())

    await retrying(attempt, f"sending {what}")


async def send_batched(producer: AIOKafkaProducer, records: Sequence[Record]) -> list[asyncio.Future[Any]]:
    """Send the records as one batch per partition (more when one fills), in order within each partition.

    Returns the futures of the batches' acks: one per batch, where `send` makes one per record, with its
    callbacks (a fifth of the worker's time in the profile). A record without a partition goes where the
    producer's default partitioner would put it: the hash of its key (`key_hash`) over the topic's
    partitions; a random one without a key.
    """
    partitions: dict[str, list[int]] = {}
    open_batches: dict[tuple[str, int], BatchBuilder] = {}
    acks = []
    for r in records:
        partition = r.partition
        if partition is None:
            if r.topic not in partitions:
                partitions[r.topic] = sorted(await producer.partitions_for(r.topic))
            chosen = partitions[r.topic]
            partition = int(_KEYLESS(None, chosen, chosen)) if r.key is None else chosen[key_hash(r.key) % len(chosen)]
        headers = list(r.headers.items()) if r.headers else None
        builder = open_batches.get((r.topic, partition))
        if builder is not None and builder.append(key=r.key, value=r.value, timestamp=None, headers=headers):
            continue
        if builder is not None:  # full
            acks.append(await _submit(producer, builder, r.topic, partition))
        builder = open_batches[(r.topic, partition)] = producer.create_batch()
        builder.append(key=r.key, value=r.value, timestamp=None, headers=headers)  # an empty batch takes any record
    for (topic, partition), builder in open_batches.items():
        acks.append(await _submit(producer, builder, topic, partition))
    return acks


async def _submit(producer: AIOKafkaProducer, builder: BatchBuilder, topic: str, partition: int) -> asyncio.Future[Any]:
    """Queue a batch, closed first so that nothing else joins it; the future of its ack."""
    builder.close()
    ack: asyncio.Future[Any] = await producer.send_batch(builder, topic, partition=partition)
    return ack


@lru_cache(maxsize=1 << 16)
def key_hash(key: bytes) -> int:
    """The producer's default partitioner's hash of a key (positive murmur2), cached: the same customer keys
    are partitioned in every batch, for the inputs' check and for each output record."""
    return int(murmur2(key)) & 0x7FFFFFFF


_KEYLESS = DefaultPartitioner()
"""Picks a random partition for a record without a key, as the producer would."""


async def publish_batched(producer: AIOKafkaProducer, records: Sequence[Record]) -> None:
    """Send the records in batches and wait until the broker acknowledged all of them, retrying until it did."""
    if records:
        await until_acked(lambda: send_batched(producer, records), f"{len(records)} records")


async def publish(producer: ProducerT, records: Sequence[Record]) -> None:
    """Send the records through Faust's producer, in order, and wait until the broker acknowledged them all."""
    if not records:
        return

    async def send_all() -> list[Any]:
        return [await producer.send(r.topic, r.key, r.value, r.partition, None, r.headers or None) for r in records]

    await until_acked(send_all, f"{len(records)} records")
