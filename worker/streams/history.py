"""The `history` table: each customer's newest transactions, for the HTTP API's lists.

Each transaction has a number in its customer's ledger (`CustomerState.posted`
counts them). An entry holds `CHUNK` consecutive numbers' records, as the
transactions topic has them, one per line; its key is the customer and the
chunk's index. The ledger reader writes a batch's entries with its outputs,
and deletes (a tombstone) the chunk that falls wholly out of the last `limit`
numbers, so a customer keeps its last `limit` transactions and up to a chunk
more. An event's transactions get their numbers from the state they are
applied to, so a replayed batch writes the same entries again.

One value per customer holding the whole list was rewritten on every event:
with a full history of 100, 35 KB decoded, re-encoded and written to the
changelog per event (110 µs), twice the rest of the worker's work. An entry per
transaction made the changelog `limit` records per customer once compacted,
which Faust recovers one by one (tens of µs each); a chunk of 10 rewrites
about 2 KB per event and recovers 10 times fewer records.
"""

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import faust
import orjson

from worker.streams.tables import CustomerTable, Entries, entries, own

Transaction = dict[str, Any]


CHUNK = 10
"""Transactions per history entry."""


def entry_key(customer: bytes, chunk: int) -> bytes:
    """The key of a customer's chunk of transactions numbered from `chunk` × `CHUNK`."""
    return b"%b\x00%d" % (customer, chunk)


class History:
    """The history table, its batch updates, and waiters for transactions to appear."""

    def __init__(self, app: faust.App, partitions: int, limit: int, customers: CustomerTable) -> None:
        self.table = app.Table("history", key_type=bytes, value_type=bytes, partitions=partitions)
        self.limit = limit
        self.customers = customers
        self._waiters: defaultdict[str, set[asyncio.Future[Transaction]]] = defaultdict(set)

    def transactions(self, customer: bytes) -> list[Transaction]:
        """The customer's kept transactions, newest first by (created, number)."""
        state = self.customers.get(customer)
        posted = 0 if state is None else state.posted
        low = max(posted - self.limit, 0)
        kept = []
        for chunk in range(low // CHUNK, (posted + CHUNK - 1) // CHUNK):
            data = entries(self.table).get(entry_key(customer, chunk))
            for at, record in enumerate(data.split(b"\n") if data else ()):
                number = chunk * CHUNK + at
                if record and low <= number < posted:
                    txn = orjson.loads(record)
                    kept.append((txn["created"], number, txn))
        kept.sort(key=lambda entry: (entry[0], entry[1]), reverse=True)
        return [txn for _, _, txn in kept]

    def find(self, customer: bytes, txn_id: str) -> Transaction | None:
        """One kept transaction of the customer, by id."""
        return next((txn for txn in self.transactions(customer) if txn["id"] == txn_id), None)

    def add(self, pending: Entries, customer: bytes, partition: int, number: int, record: bytes) -> None:
        """Put a transaction record, numbered `number` for its customer, in its chunk among a batch's entries
        (read from the table at first), with the tombstone of the chunk it pushes out of the last `limit`."""
        chunk, at = divmod(number, CHUNK)
        key = entry_key(customer, chunk)
        found = pending.get(key)
        data = found[1] if found else entries(self.table).get(key)
        records = data.split(b"\n") if data else []
        records.extend(b"" for _ in range(at + 1 - len(records)))
        records[at] = record
        # a join of one record would be that record, orjson's buffer and all (see `own`)
        pending[key] = (partition, b"\n".join(records) if len(records) > 1 else own(record))
        low = number + 1 - self.limit
        if low > 0 and low % CHUNK == 0:
            pending[entry_key(customer, low // CHUNK - 1)] = (partition, None)

    def kept(self, txns: Iterable[Transaction]) -> None:
        """Wake whoever waits for these transactions, now durable."""
        for txn in txns:
            for future in self._waiters.get(txn["id"], ()):
                if not future.done():
                    future.set_result(txn)

    async def wait_for(self, customer: bytes, txn_id: str, timeout: float) -> Transaction | None:
        """The transaction once it is kept (None after `timeout` seconds)."""
        future: asyncio.Future[Transaction] = asyncio.get_running_loop().create_future()
        self._waiters[txn_id].add(future)
        try:
            found = self.find(customer, txn_id)
            if found is not None:
                return found
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return None
        finally:
            waiters = self._waiters[txn_id]
            waiters.discard(future)
            if not waiters:
                del self._waiters[txn_id]
