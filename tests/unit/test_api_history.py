"""The history kept per customer for the list API: idempotent upserts, newest first, bounded."""

from hypothesis import given
from hypothesis import strategies as st

from worker.streams.history import Entry, decode_entries, encode_entries, upsert


def txn(i: int, created: int) -> dict[str, object]:
    return {"id": f"cbtxn_{i}", "created": created, "amount": -i}


def test_newest_first_by_created_then_arrival() -> None:
    entries: list[Entry] = []
    for i, created in [(1, 10), (2, 30), (3, 20), (4, 30)]:
        entries = upsert(entries, txn(i, created), 10) or entries
    assert [e[2]["id"] for e in entries] == ["cbtxn_4", "cbtxn_2", "cbtxn_3", "cbtxn_1"]


def test_a_redelivered_record_changes_nothing() -> None:
    entries = upsert([], txn(1, 10), 10)
    assert entries is not None
    assert upsert(entries, txn(1, 10), 10) is None


def test_only_the_newest_limit_are_kept_and_older_arrivals_are_dropped() -> None:
    entries: list[Entry] = []
    for i in range(5):
        entries = upsert(entries, txn(i, 100 + i), 3) or entries
    assert [e[2]["id"] for e in entries] == ["cbtxn_4", "cbtxn_3", "cbtxn_2"]
    assert upsert(entries, txn(9, 1), 3) is None, "older than everything kept"


@given(st.lists(st.integers(0, 20), max_size=40), st.integers(1, 8))
def test_any_delivery_order_with_repeats_keeps_distinct_ids_sorted(ids_in: list[int], limit: int) -> None:
    entries: list[Entry] = []
    for i in ids_in:
        entries = upsert(entries, txn(i, 1000 + i % 3), limit) or entries  # an id always has one `created`
    ids = [e[2]["id"] for e in entries]
    assert len(entries) == min(limit, len(set(ids_in)))
    assert len(ids) == len(set(ids)) <= limit
    keys = [(e[0], e[1]) for e in entries]
    assert keys == sorted(keys, reverse=True)
    assert len({e[1] for e in entries}) == len(entries), "arrivals are distinct"
    assert decode_entries(encode_entries(entries)) == entries
