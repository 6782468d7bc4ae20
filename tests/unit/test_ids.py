"""Deterministic transaction ids (spec §4)."""

import hashlib
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.conftest import CUSTOMER, Book, command, event, expected_txn_id, invoice
from worker.core.ids import transaction_id

BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


def test_alphabet_of_the_spec_is_digits_upper_lower() -> None:
    assert BASE62 == "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _by_hand(event_id: str, leg: int) -> str:
    """A second, differently written reading of the algorithm (bytes -> int by hand)."""
    n = 0
    for byte in hashlib.sha256((event_id + ":" + str(leg)).encode("utf-8")).digest():
        n = n * 256 + byte
    chars = []
    for _ in range(24):
        n, r = divmod(n, 62)
        chars.append(BASE62[r])
    return "cbtxn_" + "".join(chars)


@pytest.mark.parametrize(
    ("event_id", "leg"),
    [
        ("evt_cmd_support_ticket_4711", 0),
        ("evt_1QxInvoiceFinalized0001", 0),
        ("evt_1QxInvoiceFinalized0001", 1),
        ("evt_x", 17),
        ("evt_ünïcødé_€", 0),
    ],
)
def test_transaction_id_follows_the_spec_algorithm(event_id: str, leg: int) -> None:
    expected = _by_hand(event_id, leg)
    assert expected == expected_txn_id(event_id, leg)
    assert transaction_id(event_id, leg) == expected


def test_transaction_id_shape() -> None:
    tid = transaction_id("evt_shape", 0)
    assert tid.startswith("cbtxn_")
    assert len(tid) == len("cbtxn_") + 24
    assert set(tid[len("cbtxn_") :]) <= set(BASE62)


def test_digits_are_least_significant_first() -> None:
    # The first appended digit is n mod 62 (not the most significant one).
    n = int.from_bytes(hashlib.sha256(b"evt_order:0").digest(), "big")
    assert transaction_id("evt_order", 0)[len("cbtxn_")] == BASE62[n % 62]
    assert transaction_id("evt_order", 0)[-1] == BASE62[(n // 62**23) % 62]


def test_ids_differ_by_event_and_leg() -> None:
    ids = {transaction_id(e, i) for e in ("evt_a", "evt_b", "evt_a:0") for i in range(3)}
    assert len(ids) == 9


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=40), st.integers(min_value=0, max_value=50))
def test_transaction_id_matches_spec_for_any_event_id(event_id: str, leg: int) -> None:
    assert transaction_id(event_id, leg) == expected_txn_id(event_id, leg)


def test_records_use_event_id_and_leg_index_in_rule_order(book: Book) -> None:
    # B = +30 (a debit), then a 0-total invoice: applied_to_invoice (leg 0), invoice_too_small (leg 1).
    book.apply(event("customer_balance.adjustment", command(30), event_id="evt_ids_debit"))
    result = book.apply(event("invoice.finalized", invoice("in_ids", 0), event_id="evt_ids_two_legs"))
    assert [t.type for t in result.transactions] == ["applied_to_invoice", "invoice_too_small"]
    assert [t.id for t in result.transactions] == [
        expected_txn_id("evt_ids_two_legs", 0),
        expected_txn_id("evt_ids_two_legs", 1),
    ]
    assert book.transactions[0].id == expected_txn_id("evt_ids_debit", 0)
    assert book.transactions[0].customer == CUSTOMER
