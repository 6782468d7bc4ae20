"""The worker's topics, built from settings."""

from dataclasses import dataclass

import faust
from faust.types import TopicT

from worker.settings import Settings

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

    async def declare_outputs(self) -> None:
        """Create the output topics when missing; existing ones are left as they are."""
        for topic in (self.transactions, self.summaries, self.dlq):
            await topic.maybe_declare()


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
