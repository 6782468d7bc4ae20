"""The Faust app, built from settings."""

import logging
import socket
from collections.abc import Awaitable, Callable

import faust
from faust.types import TP, TopicT
from faust.types.transports import ConsumerT, TransportT
from mode.utils.objects import cached_property

from worker.kafka_security import aiokafka_security, faust_credentials
from worker.settings import Settings
from worker.streams.fetch import LedgerConsumer, LedgerTransport
from worker.streams.flow_control import KeepQueuedOnResume, RecoveryReleasesFlow
from worker.streams.history import History
from worker.streams.inbox import Inbox
from worker.streams.pipeline import Pipeline
from worker.streams.restore import clear_end_on_rebalance
from worker.streams.sinks import Sink, sink_for
from worker.streams.tables import CustomerTable
from worker.streams.topics import (
    DLQ_MAX_MESSAGE_BYTES,
    Topics,
    build_topics,
    create_topics,
    new_topics,
    require_partitions,
)
from worker.streams.transactions import require_transactions
from worker.web import dashboard, health, metrics
from worker.web.api import Api
from worker.web.metrics import MetricsSensor


class LedgerApp(faust.App):
    """A Faust app that creates its topics before its consumer subscribes.

    Faust declares internal topics only while subscribing, so the group's first
    assignment can miss a topic created a moment earlier; creating them all up
    front avoids that, and creates the outputs (the summaries compacted) too.
    """

    settings: Settings
    ledger_topics: Topics
    sinks: tuple[Sink, ...] = ()
    inboxes: tuple[Inbox, ...] = ()

    def _new_transport(self) -> TransportT:
        """Faust's aiokafka transport with `LedgerConsumer` (see `fetch` and `offsets`)."""
        return LedgerTransport(self.conf.broker_consumer, self)

    def _new_consumer(self) -> ConsumerT:
        """The consumer, told which topics the sinks commit themselves (under exactly_once, in transactions),
        which topics go to which inbox, and how long a fetch may wait and for how much data."""
        consumer = super()._new_consumer()
        if isinstance(consumer, LedgerConsumer):
            consumer.committed_elsewhere = frozenset().union(*(sink.committed_topics for sink in self.sinks))
            consumer.inboxes = {name: inbox for inbox in self.inboxes for name in inbox.names}
            consumer.fetch_max_wait_ms = self.settings.fetch_max_wait_ms
            consumer.fetch_idle_wait_ms = self.settings.fetch_idle_wait_ms
            consumer.fetch_min_bytes = self.settings.fetch_min_bytes
        return consumer

    def reader(self, topic: TopicT, body: Callable[[Inbox], Awaitable[None]], sensor: MetricsSensor) -> None:
        """Subscribe to `topic`'s topics and run `body` on their inbox once the app has started.

        The task crashes the app if `body` raises (mode's `Service.crash`), so nothing is skipped silently.
        """
        inbox = Inbox(self, topic, sensor, limit=4 * self.settings.batch_max)
        self.inboxes = (*self.inboxes, inbox)
        self.topics.add(topic)

        async def read() -> None:
            await body(inbox)

        self.task(read)

    @cached_property
    def flow_control(self) -> KeepQueuedOnResume:
        """Flow control that keeps events already queued for a stream (see `flow_control`)."""
        return KeepQueuedOnResume(loop=self.loop)

    def created_topics(self) -> list[TopicT]:
        """The topics created at start: ours and every table's changelog.

        Faust declares a changelog only when its table starts, after the consumer
        fetched metadata, so the first assignments would leave the changelog out
        (Faust logs "Ignoring missing topic") and no table state would be recovered
        on a restart or follow partitions to another worker.
        """
        return [*self.ledger_topics.all(), *(table.changelog_topic for table in self.tables.values())]

    async def on_first_start(self) -> None:
        """Check the broker can do what the settings ask, create the topics, then start as usual."""
        log_at_debug(self.settings.debug_loggers)
        if self.settings.processing_guarantee == "exactly_once":
            await require_transactions(self.settings.kafka_bootstrap_servers, aiokafka_security(self.settings))
        await create_topics(
            self.settings.kafka_bootstrap_servers,
            new_topics(self.created_topics(), self.settings.replication_factor),
            aiokafka_security(self.settings),
        )
        if self.settings.skip_repartition:
            await require_partitions(
                self.settings.kafka_bootstrap_servers,
                self.settings.input_topics,
                self.settings.partitions,
                aiokafka_security(self.settings),
            )
        await super().on_first_start()

    async def _on_partitions_revoked(self, revoked: set[TP]) -> None:
        """Hold the flow from now until the next assignment's recovery is signalled (see `KeepQueuedOnResume`),
        then revoke as usual."""
        self.flow_control.held = True
        await super()._on_partitions_revoked(revoked)

    async def _on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        """Let the sinks claim the assigned partitions first, then recover and seek as usual (which releases the
        held flow: `RecoveryReleasesFlow`)."""
        if not self.should_stop:
            for sink in self.sinks:
                await sink.claim(assigned)
        await super()._on_partitions_assigned(assigned, generation_id)

    async def on_stop(self) -> None:
        """Stop as usual, then close the sinks' producers."""
        await super().on_stop()
        for sink in self.sinks:
            await sink.stop()


def log_at_debug(names: str) -> None:
    """Log the comma-separated loggers `names` at debug, whatever the worker's level (`BALANCE_DEBUG_LOGGERS`).

    The worker's handlers have its level (mode sets them up so): they take every level now, and each
    logger's own level filters, which is the worker's for every logger not named.
    """
    chosen = [name.strip() for name in names.split(",") if name.strip()]
    for name in chosen:
        logging.getLogger(name).setLevel(logging.DEBUG)
    if chosen:
        for handler in logging.root.handlers:
            handler.setLevel(logging.NOTSET)


def create_app(settings: Settings) -> LedgerApp:
    """A Faust app with its topics, the tables and the readers."""
    app = LedgerApp(
        settings.app_id,
        broker=[f"kafka://{server.strip()}" for server in settings.kafka_bootstrap_servers.split(",")],
        datadir=str(settings.data_dir),
        store=settings.store,
        table_standby_replicas=settings.standby_replicas,
        processing_guarantee=settings.processing_guarantee,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        broker_commit_interval=settings.commit_interval_s,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        producer_max_request_size=DLQ_MAX_MESSAGE_BYTES + 1024 * 1024,
        producer_linger=settings.producer_linger_ms / 1000,
        producer_max_batch_size=1024 * 1024,
        producer_request_timeout=30.0,
        stream_publish_on_commit=False,
        web_port=settings.web_port,
        web_bind=settings.web_bind,
        web_host=settings.web_host or socket.gethostname(),
        broker_credentials=faust_credentials(settings),
        consumer_auto_offset_reset="earliest",
        TableManager=RecoveryReleasesFlow,
    )
    topics = build_topics(app, settings)
    app.settings, app.ledger_topics = settings, topics
    table = CustomerTable(app, settings.partitions, settings.state_cache)
    history = History(app, settings.partitions, settings.history_limit, table)
    sensor = metrics.MetricsSensor({*topics.sources.topics, *topics.by_customer.topics})
    if settings.skip_repartition:
        ledger = topics.direct()
        app.sinks = (sink_for("ledger", app, settings, ledger.topics),)
        pipeline = Pipeline(app, settings, topics, table, history, routed=app.sinks[0], applied=app.sinks[0])
        app.reader(ledger, pipeline.direct, sensor)
    else:
        app.sinks = (
            sink_for("ingest", app, settings, topics.sources.topics),
            sink_for("ledger", app, settings, topics.by_customer.topics),
        )
        pipeline = Pipeline(app, settings, topics, table, history, *app.sinks)
        app.reader(topics.sources, pipeline.ingest, sensor)
        app.reader(topics.by_customer, pipeline.ledger, sensor)
    lag = metrics.register(app, sensor, (table.table, history.table))
    health.register(app)
    clear_end_on_rebalance(app)
    Api(app, settings, table, history).register()
    dashboard.register(app, table, lag)
    return app
