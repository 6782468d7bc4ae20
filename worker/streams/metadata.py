"""A backoff after a failed metadata update, for the worker's Kafka clients.

aiokafka's fetcher and sender ask their client for a new metadata update as
soon as the last one fails (aio-libs/aiokafka#496). With the broker down, a
worker made about 2,200 update attempts a second, each logging two errors
(40,000 lines in a 9-second broker restart).
"""

import asyncio
from typing import Any

from aiokafka.client import AIOKafkaClient


def back_off_failed_updates(client: AIOKafkaClient) -> None:
    """Make each failed metadata update of `client` wait its `retry_backoff_ms` before reporting the failure,
    so that whoever asks again at once asks at most once per backoff."""
    update = client._metadata_update

    async def backed_off(cluster_metadata: Any, topics: Any) -> bool:
        updated: bool = await update(cluster_metadata, topics)
        if not updated:
            await asyncio.sleep(client._retry_backoff)
        return updated

    client._metadata_update = backed_off
