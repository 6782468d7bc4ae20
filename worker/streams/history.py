"""The `history` table: each customer's newest transactions, for the HTTP API's lists.

Each transaction has a number in its customer's ledger (`CustomerState.posted`
counts them). An entry is one transaction, keyed by its customer and its
number, and its value is the record as the transactions topic has it. The
ledger reader writes a batch's entries with its outputs, and deletes (a
tombstone) the entry numbered `limit` below each new one, so a customer keeps
its last `limit` transactions. An event's transactions get their numbers from
the state they are applied to, so a replayed batch writes the same entries
again.

One value per customer holding the whole list was rewritten on every event:
with a full history of 100, 35 KB decoded, re-encoded and written to the
changelog per event (110 µs), twice the rest of the worker's work. Chunks of
10 transactions per entry then kept Faust's record-by-record recovery short,
at about 2 KB rewritten per transaction; with the changelog's fetches applied
at once (`restore`), an entry per transaction recovers as fast and writes a
fifth of that.
"""

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import faust
import orjson

from worker.streams.tables import CustomerTable, Entries, entries, own

Transaction = dict[str, Any]


def entry_key(customer: bytes, number: int) -> bytes:
    """The key of a customer's transaction numbered `number`.

    `#` sets it apart from the keys of the chunks an earlier version wrote (the customer, NUL and the chunk's
    index): a chunk left in the table from then is never read as a transaction.
    """
    return b"%b\x00#%d" % (customer, number)


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
        kept = []
        data = entries(self.table)
        for number in range(max(posted - self.limit, 0), posted):
            record = data.get(entry_key(customer, number))
            if record is not None:
                txn = orjson.loads(record)
                kept.append((txn["created"], number, txn))
        kept.sort(key=lambda entry: (entry[0], entry[1]), reverse=True)
        return [txn for _, _, txn in kept]

    def find(self, customer: bytes, txn_id: str) -> Transaction | None:
        """One kept transaction of the customer, by id."""
        return next((txn for txn in self.transactions(customer) if txn["id"] == txn_id), None)

    def add(self, pending: Entries, customer: bytes, partition: int, number: int, record: bytes) -> None:
        """Add a transaction record, numbered `number` for its customer, to a batch's entries, with the
        tombstone of the entry it pushes out of the last `limit`."""
        pending[entry_key(customer, number)] = (partition, own(record))
        if number >= self.limit:
            pending[entry_key(customer, number - self.limit)] = (partition, None)

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
