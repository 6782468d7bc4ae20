"""A worker whose partitions move to a second worker drops their table entries from its memory."""

import uuid
from pathlib import Path

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer

from tests.conftest import WORKER_SETTINGS
from tests.integration.test_api import wait_ready, wait_until
from tests.integration.test_metrics import Pair, total
from worker.brokers.kafka import KafkaBroker
from worker.harness.worker_process import Names, WorkerProcess
from worker.sample import command, envelope

CUSTOMERS = [f"cus_r{i}" for i in range(24)]


async def test_entries_of_partitions_that_moved_away_leave_the_first_workers_memory(
    kafka: KafkaBroker, tmp_path: Path
) -> None:
    names = Names(f"t{uuid.uuid4().hex[:10]}")
    settings = {**names.settings(), **WORKER_SETTINGS, "WEB_HOST": "127.0.0.1"}
    workers = [WorkerProcess(kafka.bootstrap, tmp_path / f"w{i}", settings) for i in range(2)]
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await producer.start()
    async with aiohttp.ClientSession() as http:
        pair = Pair(names, workers, producer, http)
        try:
            workers[0].start()
            await wait_ready(http, pair.base(0), workers[0])
            for i, customer in enumerate(CUSTOMERS):
                event = envelope(f"evt_r{i}", "customer_balance.adjustment", command(customer, -100, "usd"), 1)
                await producer.send(names.topic("balance_commands"), orjson.dumps(event), key=customer.encode())
            await producer.flush()

            async def entries(i: int) -> float:
                return total(await pair.metrics(i), "balance_state_entries", table="customers")

            async def all_held_by_the_first() -> bool:
                return await entries(0) == len(CUSTOMERS)

            await wait_until(all_held_by_the_first, "every customer's state on the only worker")

            workers[1].start()
            await wait_ready(http, pair.base(1), workers[1])

            async def split() -> tuple[float, float] | None:
                held = await entries(0), await entries(1)
                return held if held[1] > 0 and sum(held) == len(CUSTOMERS) else None

            first, second = await wait_until(split, "each customer's state held by one worker only", timeout=90)
            assert 0 < first < len(CUSTOMERS) and second > 0
        finally:
            for proc in workers:
                proc.kill()
            await producer.stop()
