"""The worker's topics, built from settings, and their creation at start."""

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import faust
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faust.types import TopicT

from worker.settings import Settings

log = logging.getLogger(__name__)

DLQ_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""The dead-letter topic keeps whole payloads, so it accepts large records."""


@dataclass(frozen=True)
class Topics:
    """Inputs, the internal by-customer topic, and the three outputs."""

    sources: TopicT
    by_customer: TopicT
    transactions: TopicT
    summaries: TopicT
    dlq: TopicT

    def all(self) -> tuple[TopicT, ...]:
        """Every topic the worker reads or writes."""
        return (self.sources, self.by_customer, self.transactions, self.summaries, self.dlq)


def new_topics(topics: Iterable[TopicT], replication_factor: int) -> list[NewTopic]:
    """Each topic's names with their partitions and configuration, for the admin client."""
    out = []
    for topic in topics:
        config = dict(topic.config or {})
        if topic.compacting:
            config["cleanup.policy"] = "compact"
        for name in topic.topics:
            out.append(NewTopic(name, topic.partitions or 1, replication_factor, topic_configs=config))
    return out


async def create_topics(
    bootstrap_servers: str, new_topics: list[NewTopic], security: Mapping[str, Any] | None = None
) -> None:
    """Create the missing topics before the consumer subscribes; existing ones are left as they are.

    `security` holds the aiokafka TLS/SASL arguments (see `worker.kafka_security`).
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, **(security or {}))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in new_topics if t.name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                log.info("another worker created the topics first")
            log.info("created topics: %s", ", ".join(t.name for t in missing))
    finally:
        await admin.close()


def build_topics(app: faust.App, settings: Settings) -> Topics:
    """Declare every topic with raw bytes for keys and values."""

    def topic(
        *names: str, internal: bool = False, compacting: bool | None = None, config: dict[str, str] | None = None
    ) -> TopicT:
        return app.topic(
            *names,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            allow_empty=True,
            partitions=settings.partitions,
            internal=internal,
            compacting=compacting,
            config=config,
        )

    return Topics(
        sources=topic(*settings.input_topics, internal=True),
        by_customer=topic(
            f"{settings.app_id}-ledger-by-customer",
            internal=True,
            config={"max.message.bytes": str(settings.max_payload_bytes + 1024 * 1024)},
        ),
        transactions=topic(settings.topic_transactions),
        summaries=topic(settings.topic_summaries, compacting=True),
        dlq=topic(settings.topic_dlq, config={"max.message.bytes": str(DLQ_MAX_MESSAGE_BYTES)}),
    )
