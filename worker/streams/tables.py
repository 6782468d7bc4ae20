"""The customers table: one entry per customer, its whole `CustomerState`.

Entries are written only through `write_acked`, which sends each
changelog record and waits for the broker's ack, so that one changelog record
is the commit point of everything an event did.
"""

from collections.abc import Mapping
from typing import Any

import faust
import orjson
from faust.types import TableT

from worker.core.state import CustomerState
from worker.streams.publish import until_acked


def encode_state(state: CustomerState) -> bytes:
    """A table value from a state."""
    return orjson.dumps(state.to_dict())


def encoded(entries: Mapping[bytes, tuple[int, CustomerState]]) -> dict[bytes, tuple[int, bytes]]:
    """Each (partition, state) entry with its state as a table value."""
    return {key: (partition, encode_state(state)) for key, (partition, state) in entries.items()}


def decode_state(data: bytes) -> CustomerState:
    """A state from a table value."""
    return CustomerState.from_dict(orjson.loads(data))


class CustomerTable:
    """Read and durably write customer states in a Faust table of raw bytes."""

    def __init__(self, app: faust.App, partitions: int) -> None:
        self.table = app.Table("customers", key_type=bytes, value_type=bytes, partitions=partitions)

    def get(self, customer: bytes) -> CustomerState | None:
        """The customer's state, or None for a customer never seen."""
        data = self.table.data.get(customer)
        return None if data is None else decode_state(data)

    @property
    def changelog_topic(self) -> str:
        """The changelog topic's name."""
        return self.table.changelog_topic.get_topic_name()

    async def commit(self, entries: Mapping[bytes, tuple[int, CustomerState]]) -> None:
        """Write each (partition, state) to the changelog and wait until all are acknowledged."""
        await write_acked(self.table, encoded(entries))

    def keep(self, entries: Mapping[bytes, tuple[int, bytes]]) -> None:
        """Keep entries whose changelog records are durable in the in-memory store."""
        keep(self.table, entries)


async def write_acked(table: TableT[Any, Any], entries: Mapping[bytes, tuple[int, bytes]]) -> None:
    """Send each entry's changelog record to its partition, retrying until all are acknowledged, then keep it.

    Entries reach the in-memory store only once durable, so an entry read back is never ahead of
    the changelog; a retry sends identical records.
    """
    if not entries:
        return

    producer, topic = table.app.producer, table.changelog_topic.get_topic_name()

    async def send_all() -> list[Any]:
        return [
            await producer.send(topic, key, value, partition, None, None) for key, (partition, value) in entries.items()
        ]

    await until_acked(send_all, f"{len(entries)} {table.name} entries")
    keep(table, entries)


def keep(table: TableT[Any, Any], entries: Mapping[bytes, tuple[int, bytes]]) -> None:
    """Put entries in the table's store without writing the changelog (they are durable already)."""
    for key, (_, value) in entries.items():
        table.data[key] = value
