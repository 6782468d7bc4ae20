"""CustomerState: round trips through to_dict/from_dict and JSON, and replay from a restored state."""

import json
import tracemalloc
from dataclasses import replace

import faust
import orjson
import pytest

from tests.unit.conftest import (
    CUSTOMER,
    Book,
    command,
    credit_note,
    event,
    invoice,
    session,
)
from worker.core.ledger import apply
from worker.core.state import CreditNoteState, CustomerState, InvoiceState, SessionState
from worker.streams.tables import CustomerTable


def _rich_state() -> CustomerState:
    state = CustomerState(livemode=True, balances={"usd": -200, "eur": 40, "jpy": 0})
    state = state.with_invoice("in_1", InvoiceState("usd", applied=300, finalized=True))
    state = state.with_invoice(
        "in_2", InvoiceState("usd", -50, finalized=True, voided=True, reversed=True, overpaid=True)
    )
    state = state.with_invoice("in_3", InvoiceState("eur"))
    state = state.with_credit_note("cn_1", CreditNoteState("usd", "in_1", credited=700))
    state = state.with_credit_note("cn_2", CreditNoteState("eur", "in_9", credited=5, reversed=True))
    state = state.with_session("cs_1", SessionState("usd", held=100))
    state = state.with_session("cs_2", SessionState("usd", held=9, released=True))
    return replace(state, seen={"evt_a": 1, "evt_b": 1_700_000_000}, posted=7)


@pytest.mark.parametrize(
    "state",
    [CustomerState(), CustomerState(livemode=False), _rich_state()],
    ids=["empty", "test-mode", "rich"],
)
def test_round_trip_through_dict(state: CustomerState) -> None:
    assert CustomerState.from_dict(state.to_dict()) == state


@pytest.mark.parametrize(
    "state",
    [CustomerState(), CustomerState(livemode=False), _rich_state()],
    ids=["empty", "test-mode", "rich"],
)
def test_round_trip_through_json(state: CustomerState) -> None:
    via_orjson = CustomerState.from_dict(orjson.loads(orjson.dumps(state.to_dict())))
    via_json = CustomerState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert via_orjson == state
    assert via_json == state


def test_a_state_stored_before_the_transaction_count_starts_it_at_zero() -> None:
    stored = _rich_state().to_dict()
    del stored["posted"]
    assert CustomerState.from_dict(stored) == replace(_rich_state(), posted=0)


def test_round_trip_keeps_every_flag() -> None:
    state = _rich_state()
    back = CustomerState.from_dict(orjson.loads(orjson.dumps(state.to_dict())))
    assert back.livemode is True
    assert back.invoice("in_2") == InvoiceState("usd", -50, True, True, True, True)
    assert back.invoice("in_3") == InvoiceState("eur") and back.invoice("in_4") is None
    assert back.credit_note("cn_2") == CreditNoteState("eur", "in_9", credited=5, reversed=True)
    assert back.session("cs_2") == SessionState("usd", held=9, released=True)
    assert back.invoices["in_3"] == {"currency": "eur"}, "stored without the fields at their defaults"
    assert back.posted == 7
    assert back.balances == {"usd": -200, "eur": 40, "jpy": 0}
    assert back.seen == {"evt_a": 1, "evt_b": 1_700_000_000}


def test_to_dict_does_not_alias_the_state() -> None:
    state = _rich_state()
    data = orjson.loads(orjson.dumps(state.to_dict()))
    restored = CustomerState.from_dict(data)
    data["balances"]["usd"] = 999
    data["seen"]["evt_c"] = 3
    assert restored.balances["usd"] == -200
    assert "evt_c" not in restored.seen


def _stream() -> list:
    return [
        event("customer_balance.adjustment", command(-1000), event_id="evt_s1", created=10),
        event("invoice.finalized", invoice("in_s", 300), event_id="evt_s2", created=20),
        event("credit_note.created", credit_note("cn_s", 200, inv="in_s"), event_id="evt_s3", created=30),
        event("checkout.session.created", session("cs_s", 400), event_id="evt_s4", created=40),
        event("invoice.paid", invoice("in_s", None, amount_overpaid=7), event_id="evt_s5", created=50),
        event("invoice.voided", invoice("in_s", 300), event_id="evt_s6", created=60),
        event("credit_note.voided", credit_note("cn_s", 200, inv="in_s"), event_id="evt_s7", created=70),
        event("checkout.session.expired", session("cs_s", 400), event_id="evt_s8", created=80),
    ]


def test_states_from_apply_round_trip_and_continue_identically() -> None:
    stream = _stream()
    for cut in range(len(stream) + 1):
        # run the first `cut` events, serialise the state, restore it, then run the rest
        state: CustomerState | None = None
        out_restored = []
        for i, env in enumerate(stream):
            if i == cut and state is not None:
                state = CustomerState.from_dict(orjson.loads(orjson.dumps(state.to_dict())))
            result = apply(state, env)
            out_restored.extend(t.model_dump_json() for t in result.transactions)
            state = result.state or state
        book = Book()
        book.run(stream)
        assert out_restored == [t.model_dump_json() for t in book.transactions]
        assert state == book.states[CUSTOMER]


def test_restored_state_still_dedupes_and_remembers_objects() -> None:
    book = Book()
    book.run(_stream())
    restored = CustomerState.from_dict(orjson.loads(orjson.dumps(book.states[CUSTOMER].to_dict())))
    for env in _stream():
        result = apply(restored, env)
        assert result.transactions == ()
    # a new event id for an already finalized invoice still does nothing
    again = apply(restored, event("invoice.finalized", invoice("in_s", 300), event_id="evt_new", created=90))
    assert again.transactions == ()


def test_state_balances_follow_the_records() -> None:
    book = Book()
    book.run(_stream())
    state = book.states[CUSTOMER]
    assert state.balances == {"usd": sum(t.amount for t in book.transactions)}
    assert state.livemode is False


def test_table_values_take_the_memory_of_their_size() -> None:
    """orjson's bytes keep a 4 KiB buffer; a table keeps a value for each customer, so it is copied to its size."""
    states = {f"cus_{i}".encode(): (0, CustomerState(livemode=False, balances={"usd": -i})) for i in range(2000)}
    table = CustomerTable(faust.App("state-test", broker="kafka://127.0.0.1:1"), 8)
    tracemalloc.start()
    try:
        values = table.changes(states)
        size, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    payload = sum(len(value) for _, value in values.values())
    assert size < payload + 2000 * 200, f"{size / 2000:.0f} bytes per value of {payload / 2000:.0f}"
