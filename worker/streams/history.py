"""The `history` table: each customer's newest transactions, for the HTTP API's lists.

The ledger reader keeps it in the batch that makes the transactions, so its
entries are written with the customer's state (in the same transaction under
exactly_once). Per customer it keeps the newest `limit` transactions, newest
first by (created, arrival), where arrival is a number that grows with each
transaction kept for the customer. A transaction id already kept is never
changed, so a replayed batch does nothing.
"""

import asyncio
from collections import defaultdict
from collections.abc import Iterable, MutableMapping
from typing import Any

import faust
import orjson

Transaction = dict[str, Any]
Entry = tuple[int, int, Transaction]
"""(created, arrival, the transaction)."""

Pending = MutableMapping[bytes, tuple[int, list[Entry]]]
"""A batch's new entry lists by customer, each with its changelog partition."""


def decode_entries(data: bytes | None) -> list[Entry]:
    """A table value as its entries, newest first."""
    return [] if data is None else [(created, arrival, txn) for created, arrival, txn in orjson.loads(data)]


def encode_entries(entries: list[Entry]) -> bytes:
    """The table value of entries."""
    return orjson.dumps(entries)


def upsert(entries: list[Entry], txn: Transaction, limit: int) -> list[Entry] | None:
    """The entries with `txn` added after every one kept, newest `limit` first; None when nothing changes."""
    if any(kept["id"] == txn["id"] for _, _, kept in entries):
        return None
    arrival = max((e[1] for e in entries), default=-1) + 1
    entry = (txn["created"], arrival, txn)
    if not entries or entry[0] >= entries[0][0]:  # the newest, as it mostly is: first (its arrival is the highest)
        return [entry, *entries[: limit - 1]]
    added = sorted([*entries, entry], key=lambda e: (e[0], e[1]), reverse=True)[:limit]
    return None if added == entries[:limit] else added


class History:
    """The history table, its batch updates, and waiters for transactions to appear."""

    def __init__(self, app: faust.App, partitions: int, limit: int) -> None:
        self.table = app.Table("history", key_type=bytes, value_type=bytes, partitions=partitions)
        self.limit = limit
        self._waiters: defaultdict[str, set[asyncio.Future[Transaction]]] = defaultdict(set)

    def transactions(self, customer: bytes) -> list[Transaction]:
        """The customer's kept transactions, newest first."""
        return [txn for _, _, txn in decode_entries(self.table.data.get(customer))]

    def find(self, customer: bytes, txn_id: str) -> Transaction | None:
        """One kept transaction of the customer, by id."""
        return next((txn for txn in self.transactions(customer) if txn["id"] == txn_id), None)

    def add(self, pending: Pending, customer: bytes, partition: int, txn: Transaction) -> None:
        """Add a transaction to the customer's entries in `pending` (read from the table at first)."""
        found = pending.get(customer)
        entries = found[1] if found else decode_entries(self.table.data.get(customer))
        added = upsert(entries, txn, self.limit)
        if added is not None:
            pending[customer] = (partition, added)

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
