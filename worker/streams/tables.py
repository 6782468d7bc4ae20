"""The customers table: one entry per customer, its whole `CustomerState`.

Entries are written only through `CustomerTable.commit`, which sends each
changelog record and waits for the broker's ack, so that one changelog record
is the commit point of everything an event did.
"""

import asyncio
from collections.abc import Mapping

import faust
import orjson

from worker.core.state import CustomerState


def encode_state(state: CustomerState) -> bytes:
    """A table value from a state."""
    return orjson.dumps(state.to_dict())


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

    async def commit(self, entries: Mapping[bytes, tuple[int, CustomerState]]) -> None:
        """Write each (partition, state) to the changelog and wait until all are acknowledged."""
        if not entries:
            return
        futures = []
        for customer, (partition, state) in entries.items():
            value = encode_state(state)
            futures.append(self.table.send_changelog(partition, customer, value))
            self.table.data[customer] = value
        await asyncio.gather(*futures)
