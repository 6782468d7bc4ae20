"""The integration tier: a rig of producer, collector and workers on the session's Apache Kafka."""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from tests.conftest import WORKER_SETTINGS
from worker.brokers.kafka import KafkaBroker
from worker.harness.collector import Collector
from worker.harness.oracle import Source
from worker.harness.worker_process import Names, WorkerProcess


@dataclass
class Producer:
    """Produces test input and remembers where each message landed, in order."""

    client: AIOKafkaProducer
    sent: list[tuple[Source, bytes | None, bytes | None]] = field(default_factory=list)

    async def send(self, topic: str, key: bytes | None, value: bytes | None) -> Source:
        meta = await (await self.client.send(topic, value=value, key=key))
        source = (topic, meta.partition, meta.offset)
        self.sent.append((source, key, value))
        return source

    async def send_many(self, topic: str, messages: list[tuple[bytes | None, bytes | None]]) -> None:
        futures = [await self.client.send(topic, value=v, key=k) for k, v in messages]
        for (key, value), future in zip(messages, futures, strict=True):
            meta = await future
            self.sent.append(((topic, meta.partition, meta.offset), key, value))


@dataclass
class Rig:
    """One test's worker(s), producer and output collector on the session broker."""

    kafka: KafkaBroker
    names: Names
    workdir: Path
    producer: Producer
    collector: Collector
    workers: list[WorkerProcess] = field(default_factory=list)

    def worker(self, **settings: str) -> WorkerProcess:
        """A new (not yet started) worker process of this test's app; `settings` override `WORKER_SETTINGS`."""
        merged = {**self.names.settings(), **WORKER_SETTINGS, **settings}
        proc = WorkerProcess(self.kafka.bootstrap, self.workdir / f"w{len(self.workers)}", merged)
        self.workers.append(proc)
        return proc

    def topic(self, setting: str) -> str:
        return self.names.topic(setting)


@pytest.fixture
async def rig(kafka: KafkaBroker, tmp_path: Path) -> AsyncIterator[Rig]:
    """A fresh app id and topic set, a producer and a running collector."""
    names = Names(f"t{uuid.uuid4().hex[:10]}")
    client = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all", max_request_size=8 * 1024 * 1024)
    await client.start()
    collector = await Collector(kafka.bootstrap, names).start()
    rig = Rig(kafka, names, tmp_path, Producer(client), collector)
    try:
        yield rig
    finally:
        for proc in rig.workers:
            proc.kill()
        await collector.stop()
        await client.stop()
