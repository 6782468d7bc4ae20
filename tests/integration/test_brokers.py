"""The local broker launchers: Apache Kafka (KRaft) and Tansu serve aiokafka producers, groups and admin calls.

`kafka` is the session broker from conftest.py; Tansu gets its own session fixture here.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from worker.bench import jit_cpu_seconds
from worker.brokers.kafka import FETCH_SCRIPT, KAFKA_VERSION, KafkaBroker
from worker.brokers.process import BrokerProcess, probe
from worker.brokers.tansu import TansuBroker

TIMEOUT = 60.0


@pytest.fixture(scope="session")
def tansu() -> Iterator[TansuBroker]:
    with TansuBroker() as broker:
        yield broker


@pytest.fixture(params=[pytest.param("kafka", marks=pytest.mark.kafka), "tansu"])
def broker(request: pytest.FixtureRequest) -> BrokerProcess:
    result: BrokerProcess = request.getfixturevalue(request.param)
    return result


def _topic() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


@asynccontextmanager
async def _admin(bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


@asynccontextmanager
async def _producer(bootstrap: str, **kwargs: Any) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **kwargs)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


@asynccontextmanager
async def _consumer(bootstrap: str, *topics: str, **kwargs: Any) -> AsyncIterator[AIOKafkaConsumer]:
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest", **kwargs)
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def _create(bootstrap: str, topic: str, partitions: int = 1, configs: dict[str, str] | None = None) -> None:
    async with _admin(bootstrap) as admin:
        resp = await admin.create_topics([NewTopic(topic, partitions, 1, topic_configs=configs or {})])
    assert [err[1] for err in resp.topic_errors] == [0], resp


async def _take(consumer: AIOKafkaConsumer, count: int) -> list[ConsumerRecord[bytes, bytes]]:
    """Poll until `count` records arrived (fails on timeout)."""
    got: list[ConsumerRecord[bytes, bytes]] = []
    async with asyncio.timeout(TIMEOUT):
        while len(got) < count:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                got.extend(records)
    return got


async def _drain(consumer: AIOKafkaConsumer, tp: TopicPartition) -> list[ConsumerRecord[bytes, bytes]]:
    """Read `tp` (assigned) up to its end offset (the LSO under read_committed)."""
    end = (await consumer.end_offsets([tp]))[tp]
    got: list[ConsumerRecord[bytes, bytes]] = []
    async with asyncio.timeout(TIMEOUT):
        while await consumer.position(tp) < end:
            got.extend((await consumer.getmany(tp, timeout_ms=500)).get(tp, []))
    return got


async def _produce(bootstrap: str, topic: str, count: int) -> None:
    async with _producer(bootstrap) as producer:
        for i in range(count):
            await producer.send_and_wait(topic, f"v{i}".encode(), key=f"k{i}".encode())


def test_kafkas_jit_compiler_is_seen_and_tansu_has_none(kafka: KafkaBroker, tansu: TansuBroker) -> None:
    assert jit_cpu_seconds(kafka.pid) > 0
    assert jit_cpu_seconds(tansu.pid) == 0.0


def test_pom_pins_the_same_kafka_version() -> None:
    pinned = re.search(r"<kafka\.version>(.+?)</kafka\.version>", (FETCH_SCRIPT.parent / "pom.xml").read_text())
    assert pinned is not None and pinned[1] == KAFKA_VERSION


@pytest.mark.asyncio
async def test_produce_consume_and_commit_in_a_group(broker: BrokerProcess) -> None:
    assert probe(broker.host, broker.port)
    topic, group = _topic(), f"g-{uuid.uuid4().hex[:8]}"
    await _create(broker.bootstrap, topic, partitions=2)
    await _produce(broker.bootstrap, topic, 5)

    settings = {"group_id": group, "enable_auto_commit": False, **broker.group_settings}
    async with _consumer(broker.bootstrap, topic, **settings) as consumer:
        records = await _take(consumer, 5)
        assert sorted(r.value for r in records) == [f"v{i}".encode() for i in range(5)]
        await consumer.commit()
        committed = {tp: await consumer.committed(tp) for tp in consumer.assignment()}
        assert sum(o or 0 for o in committed.values()) == 5

    await _produce(broker.bootstrap, topic, 1)  # k0/v0 again: the only record past the committed offsets
    async with _consumer(broker.bootstrap, topic, **settings) as consumer:
        assert [(r.key, r.value) for r in await _take(consumer, 1)] == [(b"k0", b"v0")]
        assert (await consumer.getmany(timeout_ms=300)) == {}


@pytest.mark.kafka
@pytest.mark.asyncio
async def test_kafka_transactions_commit_and_abort(kafka: KafkaBroker) -> None:
    topic = _topic()
    await _create(kafka.bootstrap, topic)
    async with _producer(kafka.bootstrap, transactional_id=f"tx-{topic}") as producer:
        async with producer.transaction():
            for i in range(3):
                await producer.send(topic, f"c{i}".encode(), key=b"k")
        with pytest.raises(RuntimeError, match="abort me"):
            async with producer.transaction():
                await producer.send_and_wait(topic, b"aborted", key=b"k")
                raise RuntimeError("abort me")
        async with producer.transaction():
            await producer.send(topic, b"c3", key=b"k")

    tp = TopicPartition(topic, 0)
    async with _consumer(kafka.bootstrap, isolation_level="read_committed") as committed:
        committed.assign([tp])
        assert [r.value for r in await _drain(committed, tp)] == [b"c0", b"c1", b"c2", b"c3"]
    async with _consumer(kafka.bootstrap, isolation_level="read_uncommitted") as everything:
        everything.assign([tp])
        assert b"aborted" in [r.value for r in await _drain(everything, tp)]


@pytest.mark.kafka
@pytest.mark.asyncio
async def test_kafka_compacted_topic_is_accepted_and_compacts(kafka: KafkaBroker) -> None:
    topic = _topic()
    await _create(kafka.bootstrap, topic, configs={"cleanup.policy": "compact", "segment.bytes": str(1024 * 1024)})
    async with _admin(kafka.bootstrap) as admin:
        [resp] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    configs = {entry[0]: entry[1] for entry in resp.resources[0][4]}
    assert configs["cleanup.policy"] == "compact"

    # ~3 MiB over 4 keys rolls a few 1 MiB segments, so the cleaner has closed segments to compact.
    blob = b"x" * 10_000
    async with _producer(kafka.bootstrap, linger_ms=5) as producer:
        sends = [await producer.send(topic, blob, key=f"k{i % 4}".encode()) for i in range(300)]
        await asyncio.gather(*sends)

    tp = TopicPartition(topic, 0)
    async with _consumer(kafka.bootstrap, fetch_max_bytes=8 * 1024 * 1024) as consumer:
        consumer.assign([tp])
        async with asyncio.timeout(TIMEOUT):
            while True:  # re-read from the start until the cleaner has removed superseded records
                await consumer.seek_to_beginning(tp)
                records = await _drain(consumer, tp)
                if len(records) < 300:
                    break
        assert {r.key for r in records} == {b"k0", b"k1", b"k2", b"k3"}


@pytest.mark.kafka
@pytest.mark.asyncio
async def test_kafka_restart_and_kill_keep_data(kafka: KafkaBroker, tmp_path: Path) -> None:
    """On a broker of its own, so the session broker never goes down."""
    topic, group = _topic(), "g-restart"
    settings: dict[str, Any] = {"group_id": group, "enable_auto_commit": False}
    async with KafkaBroker(kafka.libs_dir, tmp_path / "kafka") as own:
        bootstrap = own.bootstrap
        await _create(bootstrap, topic)
        await _produce(bootstrap, topic, 3)
        async with _consumer(bootstrap, topic, **settings) as consumer:
            await _take(consumer, 2)
            await consumer.commit({TopicPartition(topic, 0): 2})

        await asyncio.to_thread(own.restart)
        assert own.bootstrap == bootstrap and own.running
        async with _consumer(bootstrap, topic, **settings) as consumer:
            assert [r.value for r in await _take(consumer, 1)] == [b"v2"]  # committed offset survived

        await _produce(bootstrap, topic, 1)
        own.kill()
        assert not own.running
        await asyncio.to_thread(own.start)
        async with _consumer(bootstrap, topic) as consumer:
            assert [r.value for r in await _take(consumer, 4)] == [b"v0", b"v1", b"v2", b"v0"]


@pytest.mark.asyncio
async def test_tansu_stop_kill_and_start_again() -> None:
    async with TansuBroker() as tansu:
        port = tansu.port
        tansu.kill()
        assert not tansu.running and not probe(tansu.host, port, timeout=0.5)
        await asyncio.to_thread(tansu.start)
        assert tansu.port == port and probe(tansu.host, port)
        await asyncio.to_thread(tansu.stop)
        assert not tansu.running
