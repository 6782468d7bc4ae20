"""`object_retention_s`: per-object memory is forgotten after a retention of event time, and kept by default."""

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.conftest import T0, WEEK, command, credit_note, event, invoice, session
from worker.core.ledger import Outcome, apply
from worker.core.state import CustomerState

DAY = 24 * 3600


def run(events: list[tuple[str, dict[str, object], int]], retention: int) -> CustomerState:
    state: CustomerState | None = None
    for event_type, obj, created in events:
        result = apply(state, event(event_type, obj, created=created), object_retention_s=retention)
        assert result.outcome is Outcome.APPLIED
        state = result.state
    assert state is not None
    return state


def test_objects_untouched_past_the_retention_are_forgotten() -> None:
    state = run(
        [
            ("invoice.finalized", invoice("in_old", 1000), T0),
            ("credit_note.created", credit_note("cn_old", 300), T0 + DAY),
            ("checkout.session.completed", session("cs_old"), T0 + DAY),
            ("invoice.finalized", invoice("in_new", 500), T0 + 3 * DAY),
            ("customer_balance.adjustment", command(-100), T0 + WEEK + 2 * DAY),
        ],
        retention=WEEK,
    )
    assert set(state.invoices) == {"in_new"}
    assert not state.credit_notes and not state.sessions
    assert state.touched == {"invoices:in_new": T0 + 3 * DAY}


def test_an_event_keeps_its_object_remembered() -> None:
    state = run(
        [
            ("invoice.finalized", invoice("in_1", 1000), T0),
            ("invoice.paid", invoice("in_1", 1000, amount_paid=1000, amount_due=1000), T0 + 6 * DAY),
            ("customer_balance.adjustment", command(-100), T0 + 12 * DAY),
        ],
        retention=WEEK,
    )
    assert "in_1" in state.invoices and state.touched == {"invoices:in_1": T0 + 6 * DAY}


def test_a_forgotten_invoice_is_new_again() -> None:
    """The trade-off the setting makes: a very late event for a forgotten object acts as its first."""
    state = run(
        [
            ("invoice.finalized", invoice("in_1", 1000), T0),
            ("customer_balance.adjustment", command(-100), T0 + 2 * WEEK),
        ],
        retention=WEEK,
    )
    again = apply(
        state, event("invoice.finalized", invoice("in_1", 1000), created=T0 + 2 * WEEK), object_retention_s=WEEK
    )
    assert [t.type for t in again.transactions] == ["applied_to_invoice"]


def test_by_default_objects_are_kept_forever_and_nothing_is_tracked() -> None:
    state = run(
        [
            ("invoice.finalized", invoice("in_old", 1000), T0),
            ("customer_balance.adjustment", command(-100), T0 + 100 * WEEK),
        ],
        retention=0,
    )
    assert "in_old" in state.invoices and state.touched == {}
    assert "touched" not in state.to_dict()


def test_touched_survives_the_table_round_trip() -> None:
    state = run([("invoice.finalized", invoice("in_1", 1000), T0)], retention=WEEK)
    assert CustomerState.from_dict(state.to_dict()) == state


@settings(max_examples=50)
@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 3 * WEEK)), min_size=1, max_size=30))
def test_state_holds_only_objects_touched_within_the_retention(touches: list[tuple[int, int]]) -> None:
    events = [("invoice.finalized", invoice(f"in_{n}", 1000), T0 + at) for n, at in sorted(touches, key=lambda t: t[1])]
    state = run(events, retention=WEEK)
    newest = max(at for _, at in touches) + T0
    last_touch: dict[str, int] = {}
    for n, at in touches:
        last_touch[f"in_{n}"] = max(last_touch.get(f"in_{n}", 0), T0 + at)
    assert set(state.invoices) == {i for i, at in last_touch.items() if at >= newest - WEEK}
