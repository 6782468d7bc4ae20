"""Table entries follow their partitions: a worker drops those that moved away, and recovers those it takes
over, even right after an earlier recovery."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from tests.conftest import WORKER_SETTINGS
from tests.integration.test_api import wait_ready, wait_until
from tests.integration.test_metrics import Pair, total
from worker.brokers.kafka import KafkaBroker
from worker.harness.worker_process import READY, Names, WorkerProcess
from worker.sample import command, envelope

CUSTOMERS = [f"cus_r{i}" for i in range(24)]

Entries = Callable[[int], Awaitable[float]]


@pytest.fixture
async def applied(kafka: KafkaBroker, tmp_path: Path) -> AsyncIterator[tuple[Pair, Entries]]:
    """Two workers of one app, the first started and holding every customer's state; and a worker's count of
    customer states (its `balance_state_entries`)."""
    names = Names(f"t{uuid.uuid4().hex[:10]}")
    settings = {**names.settings(), **WORKER_SETTINGS, "WEB_HOST": "127.0.0.1"}
    workers = [WorkerProcess(kafka.bootstrap, tmp_path / f"w{i}", settings) for i in range(2)]
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await producer.start()
    async with aiohttp.ClientSession() as http:
        pair = Pair(names, workers, producer, http)

        async def entries(i: int) -> float:
            return total(await pair.metrics(i), "balance_state_entries", table="customers")

        try:
            workers[0].start()
            await wait_ready(http, pair.base(0), workers[0])
            for i, customer in enumerate(CUSTOMERS):
                event = envelope(f"evt_r{i}", "customer_balance.adjustment", command(customer, -100, "usd"), 1)
                await producer.send(names.topic("balance_commands"), orjson.dumps(event), key=customer.encode())
            await producer.flush()

            async def all_held_by_the_first() -> bool:
                return await entries(0) == len(CUSTOMERS)

            await wait_until(all_held_by_the_first, "every customer's state on the only worker")
            yield pair, entries
        finally:
            for proc in workers:
                proc.kill()
            await producer.stop()


async def test_entries_of_partitions_that_moved_away_leave_the_first_workers_memory(
    applied: tuple[Pair, Entries],
) -> None:
    pair, entries = applied
    pair.workers[1].start()
    await wait_ready(pair.http, pair.base(1), pair.workers[1])

    async def split() -> tuple[float, float] | None:
        held = await entries(0), await entries(1)
        return held if held[1] > 0 and sum(held) == len(CUSTOMERS) else None

    first, second = await wait_until(split, "each customer's state held by one worker only", timeout=90)
    assert 0 < first < len(CUSTOMERS) and second > 0


async def test_partitions_taken_over_right_after_a_recovery_are_recovered_too(applied: tuple[Pair, Entries]) -> None:
    pair, entries = applied
    second = pair.workers[1].start()

    async def recovered() -> bool:
        second.check()
        return second.log_path.exists() and READY in second.log_path.read_bytes()

    await wait_until(recovered, "the second worker's first recovery")
    # at once: the second takes the first's partitions, and must read their changelogs (a recovery ended by
    # `restore` left Faust's end signal set, which ended the next one before it read a record)
    assert await asyncio.to_thread(pair.workers[0].stop) == 0
    await wait_ready(pair.http, pair.base(1), second)

    async def all_held_by_the_second() -> bool:
        return await entries(1) == len(CUSTOMERS)

    await wait_until(all_held_by_the_second, "every customer's state recovered by the second worker")
