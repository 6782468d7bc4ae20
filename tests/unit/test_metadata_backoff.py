"""A failed metadata update waits the client's retry backoff before it reports the failure."""

import asyncio
import time

from aiokafka.client import AIOKafkaClient
from aiokafka.cluster import ClusterMetadata

from worker.streams.metadata import back_off_failed_updates


async def test_a_failed_update_waits_the_backoff_and_a_client_asking_again_at_once_asks_less_often() -> None:
    client = AIOKafkaClient(bootstrap_servers="127.0.0.1:1", retry_backoff_ms=200)  # nothing listens there
    attempts = 0
    update = client._metadata_update

    async def counted(cluster_metadata: ClusterMetadata, topics: object) -> bool:
        nonlocal attempts
        attempts += 1
        result: bool = await update(cluster_metadata, topics)
        return result

    client._metadata_update = counted
    back_off_failed_updates(client)
    start = time.monotonic()
    assert await client._metadata_update(ClusterMetadata(), None) is False
    assert time.monotonic() - start >= 0.2

    async def ask_at_once() -> None:  # as aiokafka's fetcher and sender do while the broker is down
        while True:
            await client._metadata_update(ClusterMetadata(), None)

    asker = asyncio.create_task(ask_at_once())
    await asyncio.sleep(0.5)
    asker.cancel()
    assert attempts <= 5, "at most one attempt per backoff"
    await client.close()


async def test_a_successful_update_does_not_wait() -> None:
    client = AIOKafkaClient(bootstrap_servers="127.0.0.1:1", retry_backoff_ms=10_000)

    async def succeeds(cluster_metadata: ClusterMetadata, topics: object) -> bool:
        return True

    client._metadata_update = succeeds
    back_off_failed_updates(client)
    assert await asyncio.wait_for(client._metadata_update(ClusterMetadata(), None), timeout=5) is True
    await client.close()
