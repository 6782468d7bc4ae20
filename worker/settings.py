"""Settings from the environment (prefix `BALANCE_`), checked at start."""

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from worker.core.decode import DEFAULT_MAX_PAYLOAD_BYTES
from worker.core.ledger import DEFAULT_DEDUPE_RETENTION_S

TopicName = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,249}$")]
Seconds = Annotated[float, Field(gt=0)]

ENV_PREFIX = "BALANCE_"


class Settings(BaseSettings):
    """Every knob of the worker; each is `BALANCE_<NAME>` in the environment."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    kafka_bootstrap_servers: Annotated[str, Field(min_length=1)] = "localhost:9092"
    app_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]+$")] = "customer-balances"
    data_dir: Path = Path("./balance-data")
    web_port: Annotated[int, Field(ge=1, le=65535)] = 6066
    web_bind: str = "0.0.0.0"
    web_host: str | None = None
    """The host other workers reach this one at (its canonical URL); the hostname when unset."""

    topic_invoice_events: TopicName = "billing.invoice.events"
    topic_credit_note_events: TopicName = "billing.credit_note.events"
    topic_checkout_events: TopicName = "billing.checkout.events"
    topic_balance_commands: TopicName = "billing.balance.commands"
    topic_transactions: TopicName = "billing.customer_balance_transactions"
    topic_summaries: TopicName = "billing.credit_balance_summaries"
    topic_dlq: TopicName = "billing.balance.dlq"

    partitions: Annotated[int, Field(ge=1, le=1024)] = 8
    replication_factor: Annotated[int, Field(ge=1, le=16)] = 1
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "at_least_once"
    session_timeout_s: Seconds = 30.0
    heartbeat_interval_s: Seconds = 3.0
    commit_interval_s: Seconds = 2.8
    store: Literal["memory://", "rocksdb://"] = "memory://"
    standby_replicas: Annotated[int, Field(ge=0, le=16)] = 0
    """Workers that keep a standby copy of each table partition, read from its changelog (Faust's
    `table_standby_replicas`). None by default: with the in-memory store, Faust reads every partition it takes
    over from the changelog's start (the store persists no offset), so a standby copy is never used."""

    batch_max: Annotated[int, Field(ge=1, le=100_000)] = 1000
    producer_linger_ms: Annotated[float, Field(ge=0, le=1000)] = 5.0
    fetch_max_wait_ms: Annotated[int, Field(ge=0, le=30_000)] = 10
    """How long the broker may hold a fetch for `fetch_min_bytes` of data while the worker is reading (records
    handed on in the last second, or buffered for a reader); bounds the delay aiokafka's one fetch in flight
    adds."""
    fetch_idle_wait_ms: Annotated[int, Field(ge=0, le=30_000)] = 250
    """How long the broker may hold a fetch for any data while the worker is idle: the fetch then holds every
    partition, and the broker answers as soon as any of them has data."""
    fetch_min_bytes: Annotated[int, Field(ge=1, le=64 * 1024 * 1024)] = 16_384
    """The data a fetch waits for, within `fetch_max_wait_ms`, while the worker is reading: a moderate load is
    read in fewer, larger fetches (an idle worker's fetch answers at the first byte)."""
    consumer_thread: bool = False
    """Run Faust's Kafka consumer in a thread of its own (Faust's way) rather than on the event loop, where its
    fetches reach the readers with no thread and no GIL hand-off between (see `fetch.InlineConsumerThread`)."""
    max_payload_bytes: Annotated[int, Field(ge=1024)] = DEFAULT_MAX_PAYLOAD_BYTES
    dedupe_retention_s: Annotated[int, Field(ge=0)] = DEFAULT_DEDUPE_RETENTION_S
    object_retention_s: Annotated[int, Field(ge=0)] = 0
    skip_repartition: bool = False
    """Apply input events already on their customer's partition without the by-customer hop."""

    debug_loggers: str = ""
    """Comma-separated loggers logged at debug whatever the worker's level, such as `worker.streams.sinks`
    (each exactly_once transaction's offsets)."""

    api_token: SecretStr | None = None
    """Bearer token of the HTTP API's writes; without one, writes are disabled."""
    api_wait_timeout_s: Seconds = 10.0
    history_limit: Annotated[int, Field(ge=1, le=10_000)] = 100
    state_cache: Annotated[int, Field(ge=0, le=10_000_000)] = 10_000
    """Customers whose state is also kept decoded in memory (those read or written last), about 2 KB each; 0
    keeps none."""

    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None

    @property
    def input_topics(self) -> tuple[str, ...]:
        """The four topics the worker reads."""
        return (
            self.topic_invoice_events,
            self.topic_credit_note_events,
            self.topic_checkout_events,
            self.topic_balance_commands,
        )


class SettingsError(SystemExit):
    """Invalid settings: stops the worker with a message naming each setting."""


def load_settings() -> Settings:
    """Read the settings, or raise `SettingsError` naming the bad variables."""
    try:
        return Settings()
    except ValidationError as exc:
        lines = [
            f"invalid setting {ENV_PREFIX}{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        ]
        raise SettingsError("\n".join(lines)) from None
