"""A start-up check that the broker can run transactions, for `exactly_once`."""

import uuid
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError


class TransactionsUnsupported(SystemExit):
    """`exactly_once` was asked of a broker without transactions: stop with a clear message."""


async def require_transactions(bootstrap_servers: str, security: dict[str, Any]) -> None:
    """Initialise a throwaway transactional producer, or stop the worker saying why."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        transactional_id=f"balance-worker-probe-{uuid.uuid4().hex}",
        request_timeout_ms=15_000,
        **security,
    )
    try:
        await producer.start()
    except KafkaError as exc:
        raise TransactionsUnsupported(
            f"BALANCE_PROCESSING_GUARANTEE=exactly_once needs a broker with transactions, but "
            f"{bootstrap_servers} refused to initialise a transactional producer ({type(exc).__name__}). "
            "The embedded Tansu broker has none: use at_least_once there, or Apache Kafka."
        ) from None
    finally:
        await producer.stop()
