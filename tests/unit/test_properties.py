"""Hypothesis properties over random mixed streams (spec §2, §4, §5)."""

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.conftest import Book, raw_event, to_bytes
from worker.core.decode import decode
from worker.core.errors import ErrorCode, LedgerError
from worker.core.ledger import Outcome, summarise
from worker.core.state import CustomerState
from worker.models.events import Envelope

CUSTOMERS = ("cus_A", "cus_B", "cus_C")
CURRENCIES = ("usd", "jpy", "huf")
OWNED_CURRENCIES = ("usd", "usd", "jpy", "huf")  # weighted so objects often meet credit
N_INVOICES, N_NOTES, N_SESSIONS = 5, 4, 3

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class World:
    """Which customer and currency each object belongs to, fixed for one example."""

    invoices: tuple[tuple[str, str], ...]
    notes: tuple[tuple[str, str], ...]
    sessions: tuple[tuple[str | None, str, str], ...]  # customer (or None), currency, mode


owner = st.tuples(st.sampled_from(CUSTOMERS), st.sampled_from(OWNED_CURRENCIES))
worlds = st.builds(
    World,
    invoices=st.tuples(*[owner] * N_INVOICES),
    notes=st.tuples(*[owner] * N_NOTES),
    sessions=st.tuples(
        *[
            st.tuples(
                st.sampled_from((*CUSTOMERS, *CUSTOMERS, None)),
                st.sampled_from(OWNED_CURRENCIES),
                st.sampled_from(("subscription", "subscription", "payment")),
            )
        ]
        * N_SESSIONS
    ),
)

EDGE_AMOUNTS = [100_000_000, 200_000_000, 17_499, 17_500]
amounts = st.one_of(st.integers(-3000, 3000), st.integers(-60, 60), st.sampled_from(EDGE_AMOUNTS))
nonzero = amounts.filter(lambda a: a != 0)


@st.composite
def specs(draw: st.DrawFn, world: World) -> tuple[str, dict[str, Any]]:
    """One event: (type, data.object), valid by construction."""
    families = ["command", "command", "invoice", "invoice", "note", "session", "session", "unhandled"]
    family = draw(st.sampled_from(families))
    if family == "command":
        kind = draw(st.sampled_from(["adjustment", "migration", "unspent_receiver_credit", "initial"]))
        amount = draw(nonzero)
        if kind == "unspent_receiver_credit" or draw(st.integers(0, 2)) > 0:
            amount = -abs(amount)  # mostly credits, so that invoices and sessions have credit to use
        obj: dict[str, Any] = {
            "customer": draw(st.sampled_from(CUSTOMERS)),
            "amount": amount,
            "currency": draw(st.sampled_from([*OWNED_CURRENCIES, "USD", "Jpy"])),
        }
        if draw(st.booleans()):
            obj["description"] = draw(st.text(max_size=20))
            obj["metadata"] = draw(st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3))
        return f"customer_balance.{kind}", obj
    if family == "invoice":
        k = draw(st.integers(0, N_INVOICES - 1))
        customer, currency = world.invoices[k]
        kind = draw(st.sampled_from(["finalized", "finalized", "voided", "marked_uncollectible", "paid", "overpaid"]))
        obj = {"id": f"in_{k}", "object": "invoice", "customer": customer, "currency": currency}
        if kind == "finalized":
            obj["total"] = draw(amounts)
        elif kind in ("paid", "overpaid"):
            how = draw(st.sampled_from(["stated", "null", "absent"]))
            if how == "stated":
                obj["amount_overpaid"] = draw(st.integers(0, 500))
            else:
                if how == "null":
                    obj["amount_overpaid"] = None
                obj["amount_paid"] = draw(st.integers(0, 2000))
                obj["amount_due"] = draw(st.integers(0, 2000))
        return f"invoice.{kind}", obj
    if family == "note":
        k = draw(st.integers(0, N_NOTES - 1))
        customer, currency = world.notes[k]
        kind = draw(st.sampled_from(["created", "created", "voided"]))
        obj = {"id": f"cn_{k}", "customer": customer, "currency": currency, "invoice": f"in_{k}"}
        choice = draw(st.sampled_from(["int", "null", "absent"]))
        if choice == "int":
            obj["credit_amount"] = draw(st.integers(0, 3000))
        elif choice == "null":
            obj["credit_amount"] = None
        return f"credit_note.{kind}", obj
    if family == "session":
        k = draw(st.integers(0, N_SESSIONS - 1))
        customer, currency, mode = world.sessions[k]
        kind = draw(st.sampled_from(["created", "completed", "expired", "async_payment_failed"]))
        total = draw(st.one_of(st.none(), st.integers(0, 3000), st.integers(0, 3000)))
        obj = {"id": f"cs_{k}", "customer": customer, "currency": currency, "amount_total": total, "mode": mode}
        return f"checkout.session.{kind}", obj
    unhandled = draw(st.sampled_from(["invoice.created", "customer.updated"]))
    return unhandled, {"customer": draw(st.sampled_from(CUSTOMERS))}


@st.composite
def streams(draw: st.DrawFn, with_duplicates: bool = True) -> list[Envelope]:
    """A stream of envelopes with unique ids, optionally with exact re-sends of earlier envelopes."""
    world = draw(worlds)
    created = 1_700_000_000
    # often start with some credit, so that invoices and sessions have balance to use and hold
    seeds = draw(
        st.lists(st.tuples(st.sampled_from(CUSTOMERS), st.sampled_from(CURRENCIES), st.integers(-5000, -1)), max_size=6)
    )
    specs_in_order: list[tuple[str, dict[str, Any]]] = [
        ("customer_balance.adjustment", {"customer": c, "amount": a, "currency": cur}) for c, cur, a in seeds
    ]
    n = draw(st.integers(1, 40))
    out: list[Envelope] = [
        decode(to_bytes(raw_event(t, obj, event_id=f"evt_seed{i}", created=created)), 1 << 20)
        for i, (t, obj) in enumerate(specs_in_order)
    ]
    for i in range(n):
        if with_duplicates and out and draw(st.integers(0, 5)) == 0:
            out.append(out[draw(st.integers(0, len(out) - 1))])
            continue
        created += draw(st.integers(0, 3600))
        event_type, obj = draw(specs(world))
        out.append(decode(to_bytes(raw_event(event_type, obj, event_id=f"evt_p{i}", created=created)), 1 << 20))
    return out


def _run(stream: list[Envelope]) -> Book:
    book = Book()
    book.run(stream)
    for step in book.steps:
        if step.error is not None:
            # valid streams can only be rejected for an initial on a used ledger
            assert step.error.code is ErrorCode.INITIAL_AFTER_TRANSACTIONS, step.error
            assert step.envelope.type == "customer_balance.initial"
    return book


def _output(book: Book) -> list[Any]:
    """Everything the worker would publish, in order, as JSON bytes."""
    out: list[Any] = []
    for step in book.steps:
        if step.error is not None:
            out.append(("dlq", step.envelope.id, str(step.error.code)))
            continue
        assert step.result is not None
        out.extend(t.model_dump_json() for t in step.result.transactions)
        if step.result.summary is not None:
            out.append(step.result.summary.model_dump_json())
    return out


@SETTINGS
@given(streams())
def test_ending_balance_chain_per_customer_and_currency(stream: list[Envelope]) -> None:
    book = _run(stream)
    last: dict[tuple[str, str], int] = defaultdict(int)
    for t in book.transactions:
        key = (t.customer, t.currency)
        assert t.ending_balance == last[key] + t.amount
        last[key] = t.ending_balance
    for customer, state in book.states.items():
        for currency, balance in state.balances.items():
            assert balance == last[(customer, currency)]
    ids = [t.id for t in book.transactions]
    assert len(ids) == len(set(ids)), "a transaction id repeats"


@SETTINGS
@given(streams())
def test_posted_counts_each_customers_transactions(stream: list[Envelope]) -> None:
    """`posted` numbers a customer's transactions (the history's keys): it grows by each event's count."""
    book = _run(stream)
    counts: dict[str, int] = defaultdict(int)
    for t in book.transactions:
        counts[t.customer] += 1
    assert {customer: state.posted for customer, state in book.states.items()} == {
        customer: counts[customer] for customer in book.states
    }


@SETTINGS
@given(streams())
def test_the_records_sent_are_the_models_json(stream: list[Envelope]) -> None:
    """The worker sends the core's record dicts as orjson makes them: byte for byte what the validated models
    (Stripe's shapes, strict) dump."""
    results = [step.result for step in _run(stream).steps if step.result is not None]
    for result in results:
        models = result.transactions
        assert [orjson.dumps(r) for r in result.records] == [m.model_dump_json().encode() for m in models]
        summary = result.summary
        if summary is not None:
            assert orjson.dumps(result.summary_record) == summary.model_dump_json().encode()


@SETTINGS
@given(streams())
def test_replay_gives_identical_output(stream: list[Envelope]) -> None:
    first, second = _run(stream), _run(stream)
    assert _output(first) == _output(second)
    assert first.states == second.states
    assert {c: orjson.dumps(s.to_dict()) for c, s in first.states.items()} == {
        c: orjson.dumps(s.to_dict()) for c, s in second.states.items()
    }


@SETTINGS
@given(streams(with_duplicates=False), st.data())
def test_resending_applied_events_changes_nothing(stream: list[Envelope], data: st.DataObject) -> None:
    base = _run(stream)
    applied = [i for i, s in enumerate(base.steps) if s.result is not None and s.result.outcome is Outcome.APPLIED]
    if not applied:
        return
    order = list(range(len(stream)))
    for j in data.draw(st.lists(st.sampled_from(applied), min_size=1, max_size=10)):
        pos = data.draw(st.integers(order.index(j) + 1, len(order)))
        order.insert(pos, j)
    again = _run([stream[i] for i in order])
    assert _output(again) == _output(base)
    assert again.states == base.states
    seen: set[int] = set()
    for i, step in zip(order, again.steps, strict=True):
        if i in seen:
            assert step.error is None
            assert step.result is not None
            assert step.result.transactions == () and step.result.summary is None
        seen.add(i)


@SETTINGS
@given(streams())
def test_states_round_trip(stream: list[Envelope]) -> None:
    book = Book()
    for env in stream:
        try:
            result = book.apply(env)
        except LedgerError:
            continue
        if result.state is not None:
            state = result.state
            assert CustomerState.from_dict(state.to_dict()) == state
            assert CustomerState.from_dict(orjson.loads(orjson.dumps(state.to_dict()))) == state


@SETTINGS
@given(streams())
def test_final_summaries_equal_the_sum_of_amounts(stream: list[Envelope]) -> None:
    book = _run(stream)
    sums: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for t in book.transactions:
        sums[t.customer][t.currency] += t.amount
    last_published: dict[str, Any] = {}
    for s in book.summaries:
        last_published[s.customer] = s
    assert set(last_published) == set(sums)
    for customer, per_currency in sums.items():
        expected = [(c, max(0, -per_currency[c])) for c in sorted(per_currency)]
        for summary in (last_published[customer], summarise(customer, book.states[customer])):
            got = [(b.ledger_balance.monetary.currency, b.ledger_balance.monetary.value) for b in summary.balances]
            assert got == expected
            assert [b.available_balance.monetary.value for b in summary.balances] == [v for _, v in expected]
        assert book.states[customer].balances == dict(per_currency)
