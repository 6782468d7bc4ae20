"""The Faust app, built from settings."""

import faust
from mode.utils.objects import cached_property
from mode.utils.queues import FlowControlEvent

from worker.settings import Settings
from worker.streams.agents import Pipeline
from worker.streams.flow_control import KeepQueuedOnResume
from worker.streams.tables import CustomerTable
from worker.streams.topics import DLQ_MAX_MESSAGE_BYTES, Topics, build_topics, create_topics
from worker.web import metrics


class LedgerApp(faust.App):
    """A Faust app that creates its topics before its consumer subscribes.

    Faust declares internal topics only while subscribing, so the group's first
    assignment can miss a topic created a moment earlier; creating them all up
    front avoids that, and creates the outputs (the summaries compacted) too.
    """

    settings: Settings
    ledger_topics: Topics

    @cached_property
    def flow_control(self) -> FlowControlEvent:
        """Flow control that keeps events already queued for a stream (see `flow_control`)."""
        return KeepQueuedOnResume(loop=self.loop)

    async def on_first_start(self) -> None:
        """Create the topics, then start as usual."""
        await create_topics(
            self.settings.kafka_bootstrap_servers, self.ledger_topics.new_topics(self.settings.replication_factor)
        )
        await super().on_first_start()


def create_app(settings: Settings) -> LedgerApp:
    """A Faust app with its topics, the customers table and both agents."""
    app = LedgerApp(
        settings.app_id,
        broker=[f"kafka://{server.strip()}" for server in settings.kafka_bootstrap_servers.split(",")],
        datadir=str(settings.data_dir),
        store=settings.store,
        processing_guarantee=settings.processing_guarantee,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        broker_commit_interval=settings.commit_interval_s,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        producer_max_request_size=DLQ_MAX_MESSAGE_BYTES + 1024 * 1024,
        producer_request_timeout=30.0,
        stream_publish_on_commit=False,
        web_port=settings.web_port,
        web_bind=settings.web_bind,
        consumer_auto_offset_reset="earliest",
    )
    topics = build_topics(app, settings)
    app.settings, app.ledger_topics = settings, topics
    table = CustomerTable(app, settings.partitions)
    pipeline = Pipeline(settings, topics, table)
    app.agent(topics.sources, name="ingest", concurrency=1)(pipeline.ingest)
    app.agent(topics.by_customer, name="ledger", concurrency=1)(pipeline.ledger)
    metrics.register(app)
    return app
