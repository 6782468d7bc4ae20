"""`BALANCE_SKIP_REPARTITION`: events on their customer's partition skip the hop, the rest still take it.

Half the customers are keyed by customer id (their events sit on the customer's partition and are applied
where they arrive); the other half under another key, so most of their events arrive elsewhere and must be
forwarded. Both halves, through kill -9s and under both guarantees, must give exactly the oracle's outputs.
"""

import asyncio

import aiohttp
import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import DefaultPartitioner

from tests.conftest import WORKER_SETTINGS
from tests.integration.conftest import Rig
from tests.integration.test_api import wait_ready
from tests.integration.test_worker import kill_9_during, settle
from worker.chaos import read_whole
from worker.core.decode import decode
from worker.core.errors import LedgerError
from worker.core.ledger import customer_of, is_handled
from worker.harness.oracle import Source
from worker.sample import mixed
from worker.streams.source import SOURCE_HEADER

PARTITIONS = int(WORKER_SETTINGS["PARTITIONS"])


def rekeyed(messages: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Every other customer's messages under another key (the same one for all of its messages)."""
    return [(key if int(key[-1:]) % 2 == 0 else b"account-" + key, value) for key, value in messages]


def customer_partition(customer: bytes) -> int:
    return int(DefaultPartitioner()(customer, list(range(PARTITIONS)), None))


def forwarded_sources(sent: list[tuple[Source, bytes | None, bytes | None]]) -> set[Source]:
    """The handled inputs with a customer that arrived on another partition than the customer's."""
    out = set()
    for source, _key, value in sent:
        try:
            envelope = decode(value)
            customer = customer_of(envelope) if is_handled(envelope.type) else None
        except LedgerError:
            continue
        if customer is not None and source[1] != customer_partition(customer.encode()):
            out.add(source)
    return out


async def by_customer_sources(rig: Rig) -> list[Source]:
    """The input each by-customer record was forwarded from, read from the topic's start to its end."""
    out: list[Source] = []
    for record in await read_whole(rig.kafka.bootstrap, rig.names.by_customer, PARTITIONS):
        topic, partition, offset, _key, _ts = orjson.loads(dict(record.headers)[SOURCE_HEADER])
        out.append((topic, partition, offset))
    return out


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
async def test_skipping_the_hop_applies_every_event_once_through_kill_9(rig: Rig, guarantee: str) -> None:
    proc = rig.worker(SKIP_REPARTITION="true", PROCESSING_GUARANTEE=guarantee).start()
    async with aiohttp.ClientSession() as http:  # the worker creates the inputs, with its partition count
        await wait_ready(http, f"http://127.0.0.1:{proc.web_port}", proc)
    await rig.producer.send_many(rig.topic("invoice_events"), rekeyed(list(mixed(4000, customers=200, seed=17))))
    await kill_9_during(rig, proc, kills=2)

    report = await settle(rig)

    assert report.ok, report
    if guarantee == "exactly_once":
        assert (report.redelivered, report.dlq_redelivered) == (0, 0), report
    forwarded = await by_customer_sources(rig)
    expected_forwarded = forwarded_sources(rig.producer.sent)
    assert 0 < len(expected_forwarded) < len(rig.producer.sent) // 2
    assert set(forwarded) == expected_forwarded
    if guarantee == "exactly_once":
        assert len(forwarded) == len(expected_forwarded)  # each forwarded once


async def test_skipping_the_hop_refuses_inputs_with_other_partition_counts(rig: Rig) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=rig.kafka.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(rig.topic("credit_note_events"), PARTITIONS + 1, 1)])
    finally:
        await admin.close()
    proc = rig.worker(SKIP_REPARTITION="true").start()
    assert proc.proc is not None

    code = await asyncio.to_thread(proc.proc.wait, 120)

    log = proc.log_path.read_text(errors="replace")
    assert code != 0
    assert f"BALANCE_SKIP_REPARTITION needs every input topic to have BALANCE_PARTITIONS={PARTITIONS}" in log
    assert f"{rig.topic('credit_note_events')} has {PARTITIONS + 1}" in log
