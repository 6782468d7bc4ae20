"""Fixtures shared by every tier: the spec's paths and one Apache Kafka broker per session.

Nothing is skipped for lack of a broker: the session fixture fetches the jars
with Maven (cached) and starts Kafka, or fails loudly.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from worker.brokers.kafka import KafkaBroker, fetch_libs

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared/ folder beside the repository (spec, examples, Stripe fixtures)."""
    if not SHARED.is_dir():
        raise FileNotFoundError(f"{SHARED} is missing: the spec lives beside the repository")
    return SHARED


WORKER_SETTINGS = {
    "PARTITIONS": "4",
    "SESSION_TIMEOUT_S": "6",
    "HEARTBEAT_INTERVAL_S": "1",
    "COMMIT_INTERVAL_S": "0.5",
}
"""Settings of every test worker (BALANCE_ prefix left out): short timeouts, few partitions."""


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A single-node Apache Kafka (KRaft) broker for the whole session."""
    libs = fetch_libs()
    broker = KafkaBroker(libs, tmp_path_factory.mktemp("kafka"), config={"message.max.bytes": str(8 * 1024 * 1024)})
    with broker:
        yield broker
