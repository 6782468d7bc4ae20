"""The `history` table: each customer's newest transactions, for the HTTP API's lists.

A third agent reads the transactions topic (keyed by customer, co-partitioned
with the customers table) and keeps, per customer, the newest `limit`
transactions, newest first by (created, arrival offset). A transaction id
already kept is never changed, so a redelivered record does nothing. Batches
are acked only after their entries' changelog records are acknowledged, as
the ledger does with the customers table.
"""

import asyncio
import logging
from collections import defaultdict
from typing import Any

import faust
import orjson
from faust.types import EventT, StreamT

from worker.streams.batching import acked_batches
from worker.streams.tables import write_acked

log = logging.getLogger(__name__)

Transaction = dict[str, Any]
Entry = tuple[int, int, Transaction]
"""(created, offset on the transactions topic, the transaction)."""


def decode_entries(data: bytes | None) -> list[Entry]:
    """A table value as its entries, newest first."""
    return [] if data is None else [(created, offset, txn) for created, offset, txn in orjson.loads(data)]


def encode_entries(entries: list[Entry]) -> bytes:
    """The table value of entries."""
    return orjson.dumps(entries)


def upsert(entries: list[Entry], txn: Transaction, offset: int, limit: int) -> list[Entry] | None:
    """The entries with `txn` added, newest `limit` first; None when nothing changes."""
    if any(kept["id"] == txn["id"] for _, _, kept in entries):
        return None
    added = sorted([*entries, (txn["created"], offset, txn)], key=lambda e: (e[0], e[1]), reverse=True)[:limit]
    return None if added == entries[:limit] else added


def parse_transaction(value: bytes | None) -> Transaction:
    """A transaction record, or ValueError when it lacks what the history needs."""
    txn = orjson.loads(value or b"")
    if not (isinstance(txn, dict) and isinstance(txn.get("id"), str) and type(txn.get("created")) is int):
        raise ValueError("not a customer_balance_transaction")
    return txn


class History:
    """The history table, its agent body, and waiters for transactions to appear."""

    def __init__(self, app: faust.App, partitions: int, limit: int, batch_max: int) -> None:
        self.table = app.Table("history", key_type=bytes, value_type=bytes, partitions=partitions)
        self.limit = limit
        self.batch_max = batch_max
        self._waiters: defaultdict[str, set[asyncio.Future[Transaction]]] = defaultdict(set)

    def transactions(self, customer: bytes) -> list[Transaction]:
        """The customer's kept transactions, newest first."""
        return [txn for _, _, txn in decode_entries(self.table.data.get(customer))]

    def find(self, customer: bytes, txn_id: str) -> Transaction | None:
        """One kept transaction of the customer, by id."""
        return next((txn for txn in self.transactions(customer) if txn["id"] == txn_id), None)

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

    async def agent(self, stream: StreamT[bytes]) -> None:
        """Agent body: transactions topic → history entries; never raises."""
        async for events in acked_batches(stream, self.batch_max):
            try:
                await self._handle(events)
            except Exception:  # a bug: log it, never let it stop the agent
                log.exception("history batch of %d transactions not kept", len(events))

    async def _handle(self, events: list[EventT[bytes]]) -> None:
        pending: dict[bytes, tuple[int, list[Entry]]] = {}
        seen: list[Transaction] = []
        for event in events:
            msg = event.message
            try:
                txn = parse_transaction(msg.value)
            except ValueError:
                log.warning("skipped a record on %s[%d]@%d: not a transaction", msg.topic, msg.partition, msg.offset)
                continue
            if msg.key is None:
                continue
            partition, entries = pending.get(msg.key) or (msg.partition, decode_entries(self.table.data.get(msg.key)))
            added = upsert(entries, txn, msg.offset, self.limit)
            if added is not None:
                pending[msg.key] = (partition, added)
            seen.append(txn)
        await self._commit(pending)
        for txn in seen:
            for future in self._waiters.get(txn["id"], ()):
                if not future.done():
                    future.set_result(txn)

    async def _commit(self, pending: dict[bytes, tuple[int, list[Entry]]]) -> None:
        values = {key: (partition, encode_entries(entries)) for key, (partition, entries) in pending.items()}
        await write_acked(self.table, values)
