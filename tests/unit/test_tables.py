"""`entries` reads and writes a table's store, whose own view (Faust's) sees the same entries."""

import faust
from faust.types import TP

from worker.core.state import CustomerState
from worker.streams.tables import CustomerTable, encode_state, entries, keep


def test_entries_kept_and_deleted_are_the_stores_and_read_back_as_states() -> None:
    app = faust.App("tables-test", broker="kafka://127.0.0.1:1")
    customers = CustomerTable(app, 8)
    table = customers.table
    assert entries(table) is table.data.data, "the in-memory store's own dict"
    state = CustomerState(livemode=False, balances={"usd": -500}, posted=1)
    keep([(table, {b"cus_a": (3, encode_state(state)), b"cus_b": (5, b"{}")})])
    assert customers.get(b"cus_a") == state
    assert table.data.get(b"cus_b") == b"{}", "Faust's view of the store has the entry"
    keep([(table, {b"cus_b": (5, None), b"cus_none": (1, None)})])
    assert b"cus_b" not in table.data and customers.get(b"cus_b") is None
    assert customers.get(b"cus_never") is None


async def test_entries_kept_are_dropped_with_their_partition_when_a_recovery_ends_without_it() -> None:
    app = faust.App("tables-test", broker="kafka://127.0.0.1:1")
    table = CustomerTable(app, 8).table
    keep([(table, {b"cus_stays": (3, b"{}"), b"cus_moves": (5, b"{}"), b"cus_gone": (5, b"{}")})])
    keep([(table, {b"cus_gone": (5, None)})])
    changelog = table.changelog_topic.get_topic_name()
    await table.data.on_recovery_completed({TP(changelog, 3)}, set())
    assert set(entries(table)) == {b"cus_stays"}, "Faust drops the entries of the partitions no longer active"


def test_states_kept_decoded_are_read_while_the_store_holds_their_bytes() -> None:
    app = faust.App("tables-test", broker="kafka://127.0.0.1:1")
    customers = CustomerTable(app, 8, cached=2)
    table = customers.table
    a, b, c = (CustomerState(livemode=False, balances={"usd": -n}, posted=n) for n in (1, 2, 3))
    keep([(table, customers.changes({b"cus_a": (0, a), b"cus_b": (1, b)}))])
    assert customers.get(b"cus_a") is a and customers.get(b"cus_b") is b, "the very states written"
    entries(table)[b"cus_a"] = encode_state(c)  # as a recovery writes it: other bytes
    recovered = customers.get(b"cus_a")
    assert recovered == c and recovered is not a
    assert customers.get(b"cus_a") is recovered, "decoded once, then kept"
    keep([(table, customers.changes({b"cus_c": (2, c)}))])
    assert customers.get(b"cus_b") == b and customers.get(b"cus_b") is not b, "the oldest (cus_b) was dropped"
    keep([(table, {b"cus_c": (2, None)})])
    assert customers.get(b"cus_c") is None, "a deleted entry is not read from the cache"


def test_no_state_is_kept_decoded_without_a_cache() -> None:
    customers = CustomerTable(faust.App("tables-test", broker="kafka://127.0.0.1:1"), 8)
    state = CustomerState(livemode=False, balances={"usd": -1}, posted=1)
    keep([(customers.table, customers.changes({b"cus_a": (0, state)}))])
    assert customers.get(b"cus_a") == state and customers.get(b"cus_a") is not state
