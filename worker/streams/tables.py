"""The tables: each customer's whole `CustomerState`, and each customer's newest transactions.

Entries are written only through `write_acked` or a sink's transaction: each
changelog record is sent and acknowledged before the entry reaches the
in-memory store, so that the changelog is the commit point of everything an
event did and an entry read back is never ahead of it.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import faust
import orjson
from faust.types import ProducerT, TableT

from worker.core.state import CustomerState
from worker.streams.publish import until_acked

Entries = Mapping[bytes, tuple[int, bytes]]
"""Table values by key, each with the partition of its changelog record."""

Changes = Sequence[tuple[TableT[Any, Any], Entries]]
"""The entries a batch writes, per table."""


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
    """Read customer states from a Faust table of raw bytes."""

    def __init__(self, app: faust.App, partitions: int) -> None:
        self.table = app.Table("customers", key_type=bytes, value_type=bytes, partitions=partitions)

    def get(self, customer: bytes) -> CustomerState | None:
        """The customer's state, or None for a customer never seen."""
        data = self.table.data.get(customer)
        return None if data is None else decode_state(data)


def changelog_records(changes: Changes) -> list[tuple[str, bytes, bytes, int]]:
    """(changelog topic, key, value, partition) of every entry."""
    return [
        (table.changelog_topic.get_topic_name(), key, value, partition)
        for table, entries in changes
        for key, (partition, value) in entries.items()
    ]


async def write_acked(producer: ProducerT, changes: Changes) -> None:
    """Send every entry's changelog record, retrying until all are acknowledged, then keep the entries.

    A retry sends identical records.
    """
    records = changelog_records(changes)
    if not records:
        return

    async def send_all() -> list[Any]:
        return [
            await producer.send(topic, key, value, partition, None, None) for topic, key, value, partition in records
        ]

    await until_acked(send_all, f"{len(records)} table entries")
    keep(changes)


def keep(changes: Changes) -> None:
    """Put entries in their tables' stores without writing the changelog (they are durable already)."""
    for table, entries in changes:
        for key, (_, value) in entries.items():
            table.data[key] = value
