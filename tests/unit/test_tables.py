"""`entries` reads and writes a table's store, whose own view (Faust's) sees the same entries."""

import faust

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
