"""`send_batched`: one batch per partition, in order, partitioned as the producer would."""

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.record.default_records import DefaultRecordBatch

from worker.streams.publish import Record, key_hash, send_batched


class Producer:
    """A producer's batch API over a real `BatchBuilder`, recording what each sent batch holds."""

    def __init__(self, max_batch_size: int = 16384) -> None:
        self.real = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1", max_batch_size=max_batch_size)
        self.sent: list[tuple[str, int, list[bytes]]] = []

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(8))

    def create_batch(self) -> Any:
        return self.real.create_batch()

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[Any]:
        buffer = batch._build()
        values = [record.value for record in DefaultRecordBatch(bytes(buffer))]
        self.sent.append((topic, partition, values))
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


async def test_records_go_in_one_batch_per_partition_in_order() -> None:
    producer = Producer()
    keys = [b"cus_a", b"cus_b", b"cus_a", b"cus_c", b"cus_b"]
    records = [Record("t", key, f"v{i}".encode()) for i, key in enumerate(keys)]
    records.append(Record("log", b"cus_a", b"state", partition=3))
    acks = await send_batched(producer, records)  # type: ignore[arg-type]
    assert len(acks) == len(producer.sent)
    expected = {key: DefaultPartitioner()(key, list(range(8)), list(range(8))) for key in keys}
    by_partition: dict[tuple[str, int], list[bytes]] = {}
    for topic, partition, values in producer.sent:
        assert (topic, partition) not in by_partition, "one batch per partition"
        by_partition[(topic, partition)] = values
    for i, key in enumerate(keys):
        assert f"v{i}".encode() in by_partition[("t", expected[key])]
    for values in by_partition.values():
        assert values == sorted(values), "in order within a partition"
    assert by_partition[("log", 3)] == [b"state"]


async def test_a_full_batch_is_sent_and_another_started() -> None:
    producer = Producer(max_batch_size=300)
    records = [Record("t", None, bytes([i]) * 100, partition=0) for i in range(6)]
    await send_batched(producer, records)  # type: ignore[arg-type]
    assert len(producer.sent) > 1
    assert [v for _, _, values in producer.sent for v in values] == [r.value for r in records]


def test_key_hash_partitions_as_the_default_partitioner() -> None:
    keys = [b"", b"a", b"cus_S", "cus_Ünïcode".encode(), bytes(range(256))]
    for count in (1, 3, 8, 31):
        partitions = list(range(count))
        for key in keys:
            assert key_hash(key) % count == DefaultPartitioner()(key, partitions, partitions)
