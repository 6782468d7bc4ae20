"""The worker's topics, built from settings, and their creation at start."""

import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
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

    def direct(self) -> TopicT:
        """The inputs and the by-customer topic read as one, by the ledger reader when the hop is skipped."""
        return self.sources.derive_topic(topics=[*self.sources.topics, *self.by_customer.topics], internal=False)


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


@asynccontextmanager
async def admin_client(
    bootstrap_servers: str, security: Mapping[str, Any] | None
) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client, closed on exit; `security` holds the aiokafka TLS/SASL arguments."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, **(security or {}))
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def create_topics(
    bootstrap_servers: str, new_topics: list[NewTopic], security: Mapping[str, Any] | None = None
) -> None:
    """Create the missing topics before the consumer subscribes; existing ones are left as they are."""
    async with admin_client(bootstrap_servers, security) as admin:
        existing = set(await admin.list_topics())
        missing = [t for t in new_topics if t.name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                log.info("another worker created the topics first")
            log.info("created topics: %s", ", ".join(t.name for t in missing))


class PartitionsMismatch(SystemExit):
    """The hop is to be skipped, but an input topic's partitions are not the table's: stop saying which."""


async def require_partitions(
    bootstrap_servers: str, names: Iterable[str], partitions: int, security: Mapping[str, Any] | None = None
) -> None:
    """Stop the worker unless every topic in `names` has `partitions` partitions.

    A skipped hop applies an event on the partition it arrived at, so that partition must be the one the
    by-customer topic and the table use for its customer.
    """
    async with admin_client(bootstrap_servers, security) as admin:
        described = await admin.describe_topics(list(names))
    wrong = {t["topic"]: len(t["partitions"]) for t in described if len(t["partitions"]) != partitions}
    if wrong:
        found = ", ".join(f"{name} has {count}" for name, count in sorted(wrong.items()))
        raise PartitionsMismatch(
            f"BALANCE_SKIP_REPARTITION needs every input topic to have BALANCE_PARTITIONS={partitions} "
            f"partitions, but {found}. Unset it, or recreate the topics."
        )


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
