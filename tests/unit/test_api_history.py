"""The history kept per customer for the list API: an entry per transaction, newest first, bounded, and a
replayed batch writes the same entries again."""

import asyncio
import contextlib
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import faust
import orjson
from faust.types import TP
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.readers import Inbox, until
from worker.core.state import CustomerState
from worker.sample import command, envelope
from worker.settings import Settings
from worker.streams.history import History, entry_key
from worker.streams.pipeline import Pipeline
from worker.streams.publish import Record
from worker.streams.sinks import Batch, Events
from worker.streams.tables import CustomerTable, Entries, encode_state, keep
from worker.streams.topics import build_topics

CUSTOMER = b"cus_1"


class Sink:
    """Commits at once and keeps each commit's table entries, and what it sends first."""

    committed_topics: frozenset[str] = frozenset()

    def __init__(self) -> None:
        self.changes: list[dict[str, Entries]] = []
        self.first: list[list[Record]] = []

    def groups(self, events: Events) -> dict[str, Events]:
        return {"": events}

    async def commit(self, events: Events, batch: Batch) -> None:
        self.changes.append({table.name: dict(entries) for table, entries in (*batch.early, *batch.changes)})
        self.first.append(batch.outputs())


class Ledger:
    """A ledger reader of a test inbox, with its tables."""

    def __init__(self, pipeline: Pipeline, inbox: Inbox, sink: Sink) -> None:
        self.pipeline, self.inbox, self.sink = pipeline, inbox, sink
        self.history = pipeline.history
        self.offset = 0

    async def handle(self, *created: int) -> None:
        """One batch of adjustments, one made at each of `created` (of that much credit); returns once acked."""
        messages = []
        for at in created:
            self.offset += 1
            event = envelope(f"evt_{at}_{self.offset}", "customer_balance.adjustment", command("cus_1", -at, "usd"), at)
            messages.append(by_customer(self.pipeline, self.offset, orjson.dumps(event)))
        acked = len(self.inbox.acked) + 1
        self.inbox.put(messages)
        await until(lambda: len(self.inbox.acked) == acked)

    def stores(self) -> tuple[dict[bytes, bytes], dict[bytes, bytes]]:
        return dict(self.pipeline.table.table.data), dict(self.history.table.data)

    def restore(self, stores: tuple[dict[bytes, bytes], dict[bytes, bytes]]) -> None:
        for table, data in zip((self.pipeline.table.table, self.history.table), stores, strict=True):
            table.data.clear()
            table.data.update(data)

    def ids(self) -> list[str]:
        return [txn["id"] for txn in self.history.transactions(CUSTOMER)]


def by_customer(pipeline: Pipeline, offset: int, value: bytes) -> Any:
    topic = pipeline.by_customer
    return faust.types.Message(topic, 0, offset, 0.0, 0, [], CUSTOMER, value, None, tp=TP(topic, 0))


@contextlib.asynccontextmanager
async def ledger(limit: int) -> AsyncIterator[Ledger]:
    """A ledger reader keeping `limit` transactions per customer, running while the body does."""
    app = faust.App(f"history-test-{limit}", broker="kafka://127.0.0.1:1")
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:1", history_limit=limit)
    table = CustomerTable(app, 8)
    history = History(app, 8, limit, table)
    sink = Sink()
    pipeline = Pipeline(app, settings, build_topics(app, settings), table, history, sink, sink)  # type: ignore[arg-type]
    inbox = Inbox()
    reader = asyncio.create_task(pipeline.ledger(inbox))  # type: ignore[arg-type]
    try:
        yield Ledger(pipeline, inbox, sink)
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


async def test_newest_first_by_created_then_number() -> None:
    async with ledger(10) as book:
        await book.handle(10, 30)
        await book.handle(20, 30)
        listed = [(t["created"], t["ending_balance"]) for t in book.history.transactions(CUSTOMER)]
        assert listed == [(30, -90), (30, -40), (20, -60), (10, -10)], "of two at 30, the later posted first"
        assert [book.history.find(CUSTOMER, i) for i in book.ids()] == book.history.transactions(CUSTOMER)


async def test_a_customer_keeps_its_last_limit_transactions_and_the_older_ones_are_deleted() -> None:
    async with ledger(3) as book:
        await book.handle(1, 2, 3)
        assert sorted(book.history.table.data) == [entry_key(CUSTOMER, n) for n in range(3)]
        await book.handle(4, 5)
        assert [t["created"] for t in book.history.transactions(CUSTOMER)] == [5, 4, 3]
        assert sorted(book.history.table.data) == [entry_key(CUSTOMER, n) for n in range(2, 5)]
        written = book.sink.changes[-1]["history"]
        assert {key: value is None for key, (_, value) in written.items()} == {
            entry_key(CUSTOMER, 3): False,
            entry_key(CUSTOMER, 0): True,
            entry_key(CUSTOMER, 4): False,
            entry_key(CUSTOMER, 1): True,
        }, "each new number deletes the one `limit` below it"


def test_a_chunk_left_by_the_earlier_format_is_not_read_as_a_transaction() -> None:
    app = faust.App("history-upgrade", broker="kafka://127.0.0.1:1")
    customers = CustomerTable(app, 1)
    history = History(app, 1, 10, customers)
    record = orjson.dumps({"id": "t1", "created": 1})
    keep([(history.table, {CUSTOMER + b"\x000": (0, b"old\nchunk"), entry_key(CUSTOMER, 1): (0, record)})])
    customers.table.data[CUSTOMER] = encode_state(CustomerState(posted=2))
    assert history.transactions(CUSTOMER) == [{"id": "t1", "created": 1}]


async def test_an_entry_is_the_record_sent_to_the_transactions_topic_and_goes_with_it() -> None:
    async with ledger(10) as book:
        await book.handle(7)
        (txn,) = book.history.transactions(CUSTOMER)
        assert book.history.table.data[entry_key(CUSTOMER, 0)] == orjson.dumps(txn)
        assert txn["object"] == "customer_balance_transaction" and txn["amount"] == -7
        first = {(r.topic, r.key): r.value for r in book.sink.first[-1]}
        assert first[(book.pipeline.transactions, CUSTOMER)] == orjson.dumps(txn)
        assert first[(book.history.table.changelog_topic.get_topic_name(), entry_key(CUSTOMER, 0))] == orjson.dumps(txn)
        state_changelog = book.pipeline.table.table.changelog_topic.get_topic_name()
        assert all(topic != state_changelog for topic, _ in first), "the state is written after the outputs"


async def test_a_batch_replayed_from_the_old_state_writes_the_same_entries() -> None:
    async with ledger(2) as book:
        await book.handle(1, 2)
        before = book.stores()
        await book.handle(3)
        first, after = book.sink.changes[-1], book.stores()
        book.restore(before)
        book.offset -= 1
        await book.handle(3)
        assert book.sink.changes[-1] == first
        assert book.stores() == after


async def test_a_batch_applied_again_to_the_new_state_writes_no_entries() -> None:
    async with ledger(5) as book:
        await book.handle(1)
        book.offset -= 1
        await book.handle(1)
        assert book.sink.changes[-1]["history"] == {}
        assert len(book.ids()) == 1


@given(st.lists(st.integers(0, 3), min_size=1, max_size=40), st.integers(1, 25), st.data())
def test_any_run_of_batches_keeps_the_last_limit_numbers(legs: list[int], limit: int, data: st.DataObject) -> None:
    """Events of 0–3 transactions, in batches of any size: the store holds exactly the last `limit` numbers,
    which are listed newest first by (created, number)."""
    app = faust.App("history-property", broker="kafka://127.0.0.1:1")
    table = CustomerTable(app, 1)
    history = History(app, 1, limit, table)
    posted, created = 0, {}
    pending: Entries = {}
    for count in legs:
        for _ in range(count):
            created[posted] = data.draw(st.integers(1, 4))
            history.add(pending, CUSTOMER, 0, posted, orjson.dumps({"id": f"t{posted}", "created": created[posted]}))
            posted += 1
        if data.draw(st.booleans()):
            keep([(history.table, pending)])
            pending = {}
    keep([(history.table, pending)])
    table.table.data[CUSTOMER] = encode_state(CustomerState(posted=posted))
    window = range(max(posted - limit, 0), posted)
    assert sorted(history.table.data) == sorted(entry_key(CUSTOMER, n) for n in window)
    newest = sorted(window, key=lambda n: (created[n], n), reverse=True)
    assert [txn["id"] for txn in history.transactions(CUSTOMER)] == [f"t{n}" for n in newest]


def test_entries_take_the_memory_of_their_size() -> None:
    """An entry would be the record itself, and orjson's bytes keep a 4 KiB buffer: copied to size."""
    app = faust.App("history-memory", broker="kafka://127.0.0.1:1")
    history = History(app, 1, 100, CustomerTable(app, 1))
    pending: Entries = {}
    tracemalloc.start()
    try:
        for i in range(2000):
            history.add(pending, f"cus_{i}".encode(), 0, 0, orjson.dumps({"id": f"t{i}", "created": i}))
        size, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    payload = sum(len(value or b"") for _, value in pending.values())
    assert size < payload + 2000 * 300, f"{size / 2000:.0f} bytes per entry of {payload / 2000:.0f}"
