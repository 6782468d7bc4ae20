"""The rules of spec §3, at-most-once per object, dedupe, livemode, summaries and §6."""

import json

import pytest

from tests.unit.conftest import (
    CUSTOMER,
    EXAMPLES_DIR,
    HANDLED_TYPES,
    MAXIMUM,
    MINIMUMS,
    OTHER_CUSTOMER,
    T0,
    TRANSACTION_TYPES,
    WEEK,
    Book,
    command,
    credit_note,
    event,
    expected_txn_id,
    invoice,
    legs,
    load_json,
    session,
    summary_values,
)
from worker.core.errors import ErrorCode
from worker.core.ledger import Outcome, is_handled, summarise
from worker.core.state import CustomerState


def adjust(book: Book, amount: int, currency: str = "usd", customer: str = CUSTOMER, **kw: object) -> None:
    result = book.apply(event("customer_balance.adjustment", command(amount, currency, customer=customer), **kw))
    assert result.outcome is Outcome.APPLIED
    assert len(result.transactions) == 1


# --- handled types ---------------------------------------------------------------------------


def test_handled_types_are_exactly_the_fifteen_of_the_spec() -> None:
    assert all(is_handled(t) for t in HANDLED_TYPES)
    for other in (
        "invoice.created",
        "invoice.updated",
        "invoice.payment_failed",
        "credit_note.updated",
        "checkout.session.async_payment_succeeded",
        "customer_balance.refund",
        "plan.created",
        "",
        "customer.updated",
    ):
        assert not is_handled(other)


def test_unhandled_type_is_skipped_without_output(book: Book) -> None:
    result = book.apply(event("invoice.created", invoice(total=10)))
    assert result.outcome is Outcome.SKIPPED_UNHANDLED
    assert result.transactions == () and result.summary is None


# --- invoice.finalized -----------------------------------------------------------------------


def test_finalized_negative_total_credits_the_balance(book: Book) -> None:
    result = book.apply(event("invoice.finalized", invoice("in_neg", -700)))
    assert legs(result) == [("applied_to_invoice", -700, -700)]
    assert result.transactions[0].invoice == "in_neg"


def test_finalized_negative_total_with_a_debit_balance_ignores_the_debit(book: Book) -> None:
    adjust(book, 30)
    result = book.apply(event("invoice.finalized", invoice("in_neg", -700)))
    # total < 0 comes first: amount = total, amount due = 0, so no too_small even though B > 0.
    assert legs(result) == [("applied_to_invoice", -700, -670)]


def test_finalized_with_credit_partly_used(book: Book) -> None:
    adjust(book, -500)
    result = book.apply(event("invoice.finalized", invoice("in_p", 300)))
    assert legs(result) == [("applied_to_invoice", 300, -200)]


def test_finalized_with_credit_fully_used(book: Book) -> None:
    adjust(book, -200)
    result = book.apply(event("invoice.finalized", invoice("in_f", 1000)))
    # use = min(200, 1000) = 200; amount due 800 >= 50: no second leg.
    assert legs(result) == [("applied_to_invoice", 200, 0)]


def test_finalized_with_credit_leaves_a_too_small_remainder(book: Book) -> None:
    adjust(book, -480)
    result = book.apply(event("invoice.finalized", invoice("in_s", 500)))
    assert legs(result) == [("applied_to_invoice", 480, 0), ("invoice_too_small", 20, 20)]
    assert [t.invoice for t in result.transactions] == ["in_s", "in_s"]


def test_finalized_zero_total_with_credit_uses_nothing(book: Book) -> None:
    adjust(book, -500)
    result = book.apply(event("invoice.finalized", invoice("in_zero", 0)))
    assert result.transactions == ()
    assert result.summary is None


def test_finalized_with_debit_adds_it_to_the_invoice(book: Book) -> None:
    adjust(book, 300)
    result = book.apply(event("invoice.finalized", invoice("in_d", 1000)))
    assert legs(result) == [("applied_to_invoice", -300, 0)]


def test_finalized_with_debit_and_too_small_due(book: Book) -> None:
    adjust(book, 30)
    result = book.apply(event("invoice.finalized", invoice("in_d0", 0)))
    # amount due = 0 + 30 = 30 < 50.
    assert legs(result) == [("applied_to_invoice", -30, 0), ("invoice_too_small", 30, 30)]


def test_finalized_with_debit_and_too_large_due(book: Book) -> None:
    adjust(book, 2)
    result = book.apply(event("invoice.finalized", invoice("in_big", MAXIMUM)))
    assert legs(result) == [("applied_to_invoice", -2, 0), ("invoice_too_large", MAXIMUM + 2, MAXIMUM + 2)]


def test_finalized_with_credit_and_too_large_remainder(book: Book) -> None:
    adjust(book, -100)
    result = book.apply(event("invoice.finalized", invoice("in_big2", MAXIMUM + 101)))
    assert legs(result) == [("applied_to_invoice", 100, 0), ("invoice_too_large", MAXIMUM + 1, MAXIMUM + 1)]


def test_finalized_negative_total_with_credit_adds_credit(book: Book) -> None:
    adjust(book, -100)
    assert legs(book.apply(event("invoice.finalized", invoice("in_neg2", -50)))) == [("applied_to_invoice", -50, -150)]


def test_finalized_zero_balance_normal_invoice_has_no_legs(book: Book) -> None:
    result = book.apply(event("invoice.finalized", invoice("in_n", 1000)))
    assert result.outcome is Outcome.APPLIED
    assert result.transactions == ()
    assert result.summary is None


def test_finalized_zero_total_zero_balance_has_no_legs(book: Book) -> None:
    assert book.apply(event("invoice.finalized", invoice("in_0", 0))).transactions == ()


@pytest.mark.parametrize(("currency", "minimum"), sorted(MINIMUMS.items()))
def test_invoice_too_small_per_currency_minimum(book: Book, currency: str, minimum: int) -> None:
    below = book.apply(event("invoice.finalized", invoice(f"in_{currency}_below", minimum - 1, currency=currency)))
    assert legs(below) == [("invoice_too_small", minimum - 1, minimum - 1)]
    assert below.transactions[0].currency == currency
    # at the minimum, on a fresh customer (B = 0): nothing.
    at = book.apply(
        event("invoice.finalized", invoice(f"in_{currency}_at", minimum, currency=currency, customer=OTHER_CUSTOMER))
    )
    assert at.outcome is Outcome.APPLIED
    assert at.transactions == ()


def test_invoice_too_small_examples_from_the_spec(book: Book) -> None:
    # jpy is zero-decimal: 49 yen is below the 50 yen minimum; huf minimum 17500.
    assert legs(book.apply(event("invoice.finalized", invoice("in_jpy", 49, currency="jpy")))) == [
        ("invoice_too_small", 49, 49)
    ]
    assert legs(book.apply(event("invoice.finalized", invoice("in_huf", 17499, currency="huf")))) == [
        ("invoice_too_small", 17499, 17499)
    ]
    assert (
        book.apply(
            event("invoice.finalized", invoice("in_huf2", 17500, currency="huf", customer=OTHER_CUSTOMER))
        ).transactions
        == ()
    )
    assert book.balance(currency="huf") == 17499
    assert book.balance(currency="jpy") == 49


def test_invoice_too_small_gbp(book: Book) -> None:
    assert legs(book.apply(event("invoice.finalized", invoice("in_gbp", 29, currency="gbp")))) == [
        ("invoice_too_small", 29, 29)
    ]
    assert (
        book.apply(
            event("invoice.finalized", invoice("in_gbp2", 30, currency="gbp", customer=OTHER_CUSTOMER))
        ).transactions
        == ()
    )


@pytest.mark.parametrize("currency", ["usd", "jpy", "huf"])
def test_invoice_too_large_over_the_maximum(book: Book, currency: str) -> None:
    assert book.apply(event("invoice.finalized", invoice("in_max", MAXIMUM, currency=currency))).transactions == ()
    over = book.apply(event("invoice.finalized", invoice("in_over", MAXIMUM + 1, currency=currency)))
    assert legs(over) == [("invoice_too_large", MAXIMUM + 1, MAXIMUM + 1)]
    assert over.transactions[0].invoice == "in_over"


def test_finalized_twice_applies_once_even_with_different_event_ids(book: Book) -> None:
    adjust(book, -500)
    first = book.apply(event("invoice.finalized", invoice("in_once", 300), event_id="evt_fin_a"))
    second = book.apply(event("invoice.finalized", invoice("in_once", 300), event_id="evt_fin_b"))
    assert legs(first) == [("applied_to_invoice", 300, -200)]
    assert second.outcome is Outcome.APPLIED
    assert second.transactions == ()
    assert book.balance() == -200


def test_finalized_too_small_invoice_only_once(book: Book) -> None:
    book.apply(event("invoice.finalized", invoice("in_small", 10)))
    again = book.apply(event("invoice.finalized", invoice("in_small", 10)))
    assert again.transactions == ()
    assert book.balance() == 10


# --- invoice.voided / marked_uncollectible ---------------------------------------------------


def test_void_after_finalize_reverses_once(book: Book) -> None:
    adjust(book, -500)
    book.apply(event("invoice.finalized", invoice("in_v", 300)))
    voided = book.apply(event("invoice.voided", invoice("in_v", 300)))
    assert legs(voided) == [("unapplied_from_invoice", -300, -500)]
    assert voided.transactions[0].invoice == "in_v"
    again = book.apply(event("invoice.voided", invoice("in_v", 300)))
    assert again.transactions == ()
    assert book.balance() == -500


def test_void_of_a_negative_invoice_reverses_the_credit(book: Book) -> None:
    book.apply(event("invoice.finalized", invoice("in_nv", -700)))
    voided = book.apply(event("invoice.voided", invoice("in_nv", -700)))
    assert legs(voided) == [("unapplied_from_invoice", 700, 0)]


def test_void_of_an_invoice_that_took_a_debit(book: Book) -> None:
    adjust(book, 300)
    book.apply(event("invoice.finalized", invoice("in_dv", 1000)))
    assert legs(book.apply(event("invoice.voided", invoice("in_dv", 1000)))) == [("unapplied_from_invoice", 300, 300)]


def test_void_without_applied_amount_has_no_leg(book: Book) -> None:
    book.apply(event("invoice.finalized", invoice("in_plain", 1000)))
    assert book.apply(event("invoice.voided", invoice("in_plain", 1000))).transactions == ()
    # invoice_too_small is not an applied_to_invoice amount: nothing to reverse either.
    book.apply(event("invoice.finalized", invoice("in_tiny", 10)))
    assert book.apply(event("invoice.voided", invoice("in_tiny", 10))).transactions == ()
    assert book.balance() == 10


def test_void_of_unknown_invoice_then_finalize_does_nothing(book: Book) -> None:
    adjust(book, -500)
    voided = book.apply(event("invoice.voided", invoice("in_vf", 300)))
    assert voided.outcome is Outcome.APPLIED and voided.transactions == ()
    finalized = book.apply(event("invoice.finalized", invoice("in_vf", 300)))
    assert finalized.transactions == ()
    assert book.balance() == -500


def test_finalize_after_void_after_finalize_does_nothing(book: Book) -> None:
    adjust(book, -500)
    book.apply(event("invoice.finalized", invoice("in_vff", 300)))
    book.apply(event("invoice.voided", invoice("in_vff", 300)))
    assert book.apply(event("invoice.finalized", invoice("in_vff", 300))).transactions == ()
    assert book.balance() == -500


def test_marked_uncollectible_changes_nothing(book: Book) -> None:
    adjust(book, -500)
    book.apply(event("invoice.finalized", invoice("in_u", 300)))
    result = book.apply(event("invoice.marked_uncollectible", invoice("in_u", 300)))
    assert result.outcome is Outcome.APPLIED
    assert result.transactions == () and result.summary is None
    # and it does not stop a later void from reversing.
    assert legs(book.apply(event("invoice.voided", invoice("in_u", 300)))) == [("unapplied_from_invoice", -300, -500)]


# --- invoice.paid / invoice.overpaid ---------------------------------------------------------


@pytest.mark.parametrize("event_type", ["invoice.paid", "invoice.overpaid"])
def test_overpaid_from_amount_overpaid(book: Book, event_type: str) -> None:
    obj = invoice("in_op", None, amount_overpaid=250, amount_paid=1250, amount_due=1000)
    result = book.apply(event(event_type, obj))
    assert legs(result) == [("invoice_overpaid", -250, -250)]
    assert result.transactions[0].invoice == "in_op"


def test_amount_overpaid_wins_over_derived(book: Book) -> None:
    obj = invoice("in_op2", None, amount_overpaid=100, amount_paid=5000, amount_due=1000)
    assert legs(book.apply(event("invoice.paid", obj))) == [("invoice_overpaid", -100, -100)]


def test_amount_overpaid_zero_means_no_overpayment(book: Book) -> None:
    obj = invoice("in_op0", None, amount_overpaid=0, amount_paid=5000, amount_due=1000)
    assert book.apply(event("invoice.paid", obj)).transactions == ()


@pytest.mark.parametrize("present_as_null", [True, False])
def test_overpaid_derived_when_null_or_absent(book: Book, present_as_null: bool) -> None:
    extra = {"amount_overpaid": None} if present_as_null else {}
    obj = invoice("in_der", None, amount_paid=1300, amount_due=1000, **extra)
    assert legs(book.apply(event("invoice.paid", obj))) == [("invoice_overpaid", -300, -300)]


def test_underpaid_or_exact_payment_has_no_leg(book: Book) -> None:
    assert (
        book.apply(event("invoice.paid", invoice("in_ex", None, amount_paid=1000, amount_due=1000))).transactions == ()
    )
    assert (
        book.apply(event("invoice.paid", invoice("in_un", None, amount_paid=900, amount_due=1000))).transactions == ()
    )


def test_overpayment_recorded_once_per_invoice(book: Book) -> None:
    book.apply(event("invoice.paid", invoice("in_o1", None, amount_overpaid=250), event_id="evt_paid_1"))
    again = book.apply(event("invoice.overpaid", invoice("in_o1", None, amount_overpaid=250), event_id="evt_paid_2"))
    assert again.outcome is Outcome.APPLIED and again.transactions == ()
    assert book.balance() == -250


def test_overpayment_after_finalize_and_finalize_after_overpayment(book: Book) -> None:
    book.apply(event("invoice.finalized", invoice("in_fo", 1000)))
    assert legs(book.apply(event("invoice.paid", invoice("in_fo", None, amount_overpaid=50)))) == [
        ("invoice_overpaid", -50, -50)
    ]
    book.apply(event("invoice.paid", invoice("in_of", None, amount_overpaid=70)))
    # in_of was never finalized: the later finalize is still its first one (B = -120, uses 120).
    assert legs(book.apply(event("invoice.finalized", invoice("in_of", 1000)))) == [("applied_to_invoice", 120, 0)]


# --- credit notes ----------------------------------------------------------------------------


def test_credit_note_created_credits_with_links(book: Book) -> None:
    result = book.apply(event("credit_note.created", credit_note("cn_1", 700, inv="in_cn")))
    assert legs(result) == [("credit_note", -700, -700)]
    t = result.transactions[0]
    assert (t.credit_note, t.invoice, t.checkout_session) == ("cn_1", "in_cn", None)


def test_credit_note_created_twice_credits_once(book: Book) -> None:
    book.apply(event("credit_note.created", credit_note("cn_2", 700), event_id="evt_cn_a"))
    again = book.apply(event("credit_note.created", credit_note("cn_2", 700), event_id="evt_cn_b"))
    assert again.outcome is Outcome.APPLIED and again.transactions == ()
    assert book.balance() == -700


def test_credit_note_void_reverses_once_with_the_same_links(book: Book) -> None:
    book.apply(event("credit_note.created", credit_note("cn_3", 700, inv="in_cn3")))
    voided = book.apply(event("credit_note.voided", credit_note("cn_3", 700, inv="in_cn3")))
    assert legs(voided) == [("credit_note", 700, 0)]
    assert (voided.transactions[0].credit_note, voided.transactions[0].invoice) == ("cn_3", "in_cn3")
    assert book.apply(event("credit_note.voided", credit_note("cn_3", 700, inv="in_cn3"))).transactions == ()
    # created again after the void: the note already credited.
    assert book.apply(event("credit_note.created", credit_note("cn_3", 700, inv="in_cn3"))).transactions == ()
    assert book.balance() == 0


def test_credit_note_void_reverses_the_recorded_credit(book: Book) -> None:
    book.apply(event("credit_note.created", credit_note("cn_r", 700)))
    voided = book.apply(event("credit_note.voided", credit_note("cn_r", omit_credit_amount=True)))
    assert legs(voided) == [("credit_note", 700, 0)]


def test_void_of_a_note_that_never_credited(book: Book) -> None:
    assert book.apply(event("credit_note.voided", credit_note("cn_none", 700))).transactions == ()
    assert book.apply(event("credit_note.created", credit_note("cn_zero", 0))).transactions == ()
    assert book.apply(event("credit_note.voided", credit_note("cn_zero", 0))).transactions == ()
    assert book.transactions == []


@pytest.mark.parametrize("omit", [True, False])
def test_credit_note_missing_or_null_credit_amount_counts_as_zero(book: Book, omit: bool) -> None:
    result = book.apply(event("credit_note.created", credit_note("cn_n", None, omit_credit_amount=omit)))
    assert result.outcome is Outcome.APPLIED
    assert result.transactions == ()


# --- checkout sessions -----------------------------------------------------------------------


@pytest.mark.parametrize("event_type", ["checkout.session.created", "checkout.session.completed"])
def test_subscription_session_holds_credit(book: Book, event_type: str) -> None:
    adjust(book, -500)
    result = book.apply(event(event_type, session("cs_1", 300)))
    assert legs(result) == [("checkout_session_subscription_payment", 300, -200)]
    t = result.transactions[0]
    assert (t.checkout_session, t.invoice, t.credit_note) == ("cs_1", None, None)


def test_session_hold_is_capped_by_the_credit(book: Book) -> None:
    adjust(book, -200)
    assert legs(book.apply(event("checkout.session.completed", session("cs_cap", 1000)))) == [
        ("checkout_session_subscription_payment", 200, 0)
    ]


def test_no_second_hold_for_a_session(book: Book) -> None:
    adjust(book, -500)
    book.apply(event("checkout.session.created", session("cs_2", 300)))
    again = book.apply(event("checkout.session.completed", session("cs_2", 300)))
    assert again.transactions == ()
    assert book.balance() == -200


@pytest.mark.parametrize(
    "obj",
    [
        session("cs_pay", 300, mode="payment"),
        session("cs_setup", 300, mode="setup"),
        session("cs_nocust", 300, customer=None),
        session("cs_null_total", None),
        session("cs_zero_total", 0),
    ],
    ids=["payment", "setup", "no-customer", "null-total", "zero-total"],
)
def test_sessions_that_hold_nothing(book: Book, obj: dict[str, object]) -> None:
    adjust(book, -500)
    for event_type in ("checkout.session.created", "checkout.session.completed"):
        result = book.apply(event(event_type, obj))
        assert result.outcome is Outcome.APPLIED
        assert result.transactions == ()
    assert book.balance() == -500


def test_session_without_credit_holds_nothing(book: Book) -> None:
    assert book.apply(event("checkout.session.created", session("cs_nc", 300))).transactions == ()
    adjust(book, 100)
    assert book.apply(event("checkout.session.created", session("cs_nc2", 300))).transactions == ()


def test_session_that_held_nothing_can_hold_on_completion(book: Book) -> None:
    # "no hold yet for this session": created with no credit, completed once credit exists.
    assert book.apply(event("checkout.session.created", session("cs_late", 300))).transactions == ()
    adjust(book, -500)
    assert legs(book.apply(event("checkout.session.completed", session("cs_late", 300)))) == [
        ("checkout_session_subscription_payment", 300, -200)
    ]


@pytest.mark.parametrize("release", ["checkout.session.expired", "checkout.session.async_payment_failed"])
def test_release_once(book: Book, release: str) -> None:
    adjust(book, -500)
    book.apply(event("checkout.session.completed", session("cs_r", 300)))
    released = book.apply(event(release, session("cs_r", 300)))
    assert legs(released) == [("checkout_session_subscription_payment_canceled", -300, -500)]
    assert released.transactions[0].checkout_session == "cs_r"
    other = (
        "checkout.session.expired" if release != "checkout.session.expired" else "checkout.session.async_payment_failed"
    )
    assert book.apply(event(release, session("cs_r", 300))).transactions == ()
    assert book.apply(event(other, session("cs_r", 300))).transactions == ()
    # a released session does not hold again.
    assert book.apply(event("checkout.session.completed", session("cs_r", 300))).transactions == ()
    assert book.balance() == -500


def test_release_without_hold(book: Book) -> None:
    adjust(book, -500)
    assert book.apply(event("checkout.session.expired", session("cs_never", 300))).transactions == ()
    assert (
        book.apply(event("checkout.session.async_payment_failed", session("cs_pay2", 300, mode="payment"))).transactions
        == ()
    )
    assert book.balance() == -500


def test_session_currency_is_normalised(book: Book) -> None:
    adjust(book, -500)
    result = book.apply(event("checkout.session.created", session("cs_up", 300, currency="USD")))
    assert [(t.currency, t.amount) for t in result.transactions] == [("usd", 300)]


def test_session_with_expanded_customer(book: Book) -> None:
    adjust(book, -500)
    result = book.apply(event("checkout.session.created", session("cs_exp", 300, customer={"id": CUSTOMER})))
    assert result.customer == CUSTOMER
    assert legs(result) == [("checkout_session_subscription_payment", 300, -200)]


# --- commands --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "txn_type", "amount"),
    [
        ("customer_balance.adjustment", "adjustment", -500),
        ("customer_balance.adjustment", "adjustment", 500),
        ("customer_balance.migration", "migration", -1234),
        ("customer_balance.migration", "migration", 99),
        ("customer_balance.unspent_receiver_credit", "unspent_receiver_credit", -42),
        ("customer_balance.initial", "initial", -700),
        ("customer_balance.initial", "initial", 700),
    ],
)
def test_command_posts_one_leg_with_description_and_metadata(
    book: Book, event_type: str, txn_type: str, amount: int
) -> None:
    obj = command(amount, "eur", description="Why", metadata={"ticket": "1", "by": "ops"})
    result = book.apply(event(event_type, obj, event_id="evt_cmd_x", created=T0 + 5))
    assert result.outcome is Outcome.APPLIED
    assert len(result.transactions) == 1
    t = result.transactions[0]
    assert t.model_dump() == {
        "id": expected_txn_id("evt_cmd_x", 0),
        "object": "customer_balance_transaction",
        "amount": amount,
        "checkout_session": None,
        "created": T0 + 5,
        "credit_note": None,
        "currency": "eur",
        "customer": CUSTOMER,
        "description": "Why",
        "ending_balance": amount,
        "invoice": None,
        "livemode": False,
        "metadata": {"ticket": "1", "by": "ops"},
        "type": txn_type,
    }


def test_command_without_description_and_metadata(book: Book) -> None:
    t = book.apply(event("customer_balance.adjustment", command(-5))).transactions[0]
    assert t.description is None
    assert t.metadata == {}


def test_non_command_legs_never_carry_object_description_or_metadata(book: Book) -> None:
    obj = invoice("in_meta", 10, description="Invoice description", metadata={"order": "77"})
    t = book.apply(event("invoice.finalized", obj)).transactions[0]
    assert (t.description, t.metadata) == (None, {})


def test_initial_is_rejected_after_a_transaction(book: Book) -> None:
    adjust(book, -500)
    err = book.reject(event("customer_balance.initial", command(-100)))
    assert err.code is ErrorCode.INITIAL_AFTER_TRANSACTIONS
    assert book.balance() == -500


def test_initial_is_rejected_after_initial(book: Book) -> None:
    book.apply(event("customer_balance.initial", command(-100)))
    assert book.reject(event("customer_balance.initial", command(-100))).code is ErrorCode.INITIAL_AFTER_TRANSACTIONS


def test_initial_is_rejected_when_the_ledger_is_back_at_zero(book: Book) -> None:
    adjust(book, 100)
    adjust(book, -100)
    assert book.balance() == 0
    assert book.reject(event("customer_balance.initial", command(-5))).code is ErrorCode.INITIAL_AFTER_TRANSACTIONS


def test_initial_is_rejected_after_an_invoice_leg(book: Book) -> None:
    book.apply(event("invoice.finalized", invoice("in_i", 10)))
    assert book.reject(event("customer_balance.initial", command(-5))).code is ErrorCode.INITIAL_AFTER_TRANSACTIONS


def test_initial_check_uses_the_normalised_currency(book: Book) -> None:
    adjust(book, -500, "usd")
    assert (
        book.reject(event("customer_balance.initial", command(-5, "USD"))).code is ErrorCode.INITIAL_AFTER_TRANSACTIONS
    )


def test_initial_is_per_ledger(book: Book) -> None:
    adjust(book, -500, "usd")
    result = book.apply(event("customer_balance.initial", command(-100, "eur")))
    assert legs(result) == [("initial", -100, -100)]
    other = book.apply(event("customer_balance.initial", command(-100, "usd", customer=OTHER_CUSTOMER)))
    assert legs(other) == [("initial", -100, -100)]


def test_initial_allowed_when_only_leg_less_events_came_before(book: Book) -> None:
    book.apply(event("invoice.finalized", invoice("in_nl", 1000)))
    book.apply(event("invoice.marked_uncollectible", invoice("in_nl", 1000)))
    result = book.apply(event("customer_balance.initial", command(-5)))
    assert legs(result) == [("initial", -5, -5)]


# --- all twelve transaction types in one stream ----------------------------------------------


def test_all_twelve_transaction_types_are_produced(book: Book) -> None:
    book.apply(event("customer_balance.initial", command(-1000)))
    book.apply(event("customer_balance.migration", command(-100)))
    book.apply(event("customer_balance.unspent_receiver_credit", command(-100)))
    book.apply(event("customer_balance.adjustment", command(-100)))
    book.apply(event("invoice.finalized", invoice("in_all", 200)))
    book.apply(event("invoice.voided", invoice("in_all", 200)))
    book.apply(event("invoice.paid", invoice("in_all2", None, amount_overpaid=5)))
    book.apply(event("credit_note.created", credit_note("cn_all", 10)))
    book.apply(event("checkout.session.created", session("cs_all", 100)))
    book.apply(event("checkout.session.expired", session("cs_all", 100)))
    book.apply(event("invoice.finalized", invoice("in_small_all", 10, currency="eur")))
    book.apply(event("invoice.finalized", invoice("in_large_all", MAXIMUM + 1, currency="gbp")))
    assert {t.type for t in book.transactions} == TRANSACTION_TYPES


# --- at-most-once, dedupe, retention ---------------------------------------------------------


def test_duplicate_event_id_is_skipped_without_output(book: Book) -> None:
    env = event("customer_balance.adjustment", command(-500), event_id="evt_dup")
    book.apply(env)
    again = book.apply(env)
    assert again.outcome is Outcome.SKIPPED_DUPLICATE
    assert again.transactions == ()
    assert again.summary is None
    assert book.balance() == -500
    assert len(book.transactions) == 1


def test_duplicate_id_with_a_different_payload_is_still_skipped(book: Book) -> None:
    book.apply(event("customer_balance.adjustment", command(-500), event_id="evt_dup2"))
    again = book.apply(event("customer_balance.adjustment", command(-900), event_id="evt_dup2"))
    assert again.outcome is Outcome.SKIPPED_DUPLICATE
    assert again.transactions == ()
    assert book.balance() == -500


def test_duplicate_of_an_applied_leg_less_event_is_skipped(book: Book) -> None:
    env = event("invoice.marked_uncollectible", invoice("in_dd", 1))
    assert book.apply(env).outcome is Outcome.APPLIED
    assert book.apply(env).outcome is Outcome.SKIPPED_DUPLICATE


def test_resent_customerless_checkout_event_has_no_effect_either_time(book: Book) -> None:
    # A session without a customer can hold nothing (§3), and there is no customer state to remember its
    # id in (§2 keeps ids per customer), so each delivery is applied with no effect: never any output.
    env = event("checkout.session.completed", session("cs_anon", 300, customer=None), event_id="evt_anon")
    for _ in range(2):
        result = book.apply(env)
        assert result.outcome is Outcome.APPLIED
        assert result.transactions == () and result.summary is None and result.state is None


def test_retention_forgets_ids_older_than_the_window() -> None:
    book = Book(retention=100)
    first = event("customer_balance.adjustment", command(-5), event_id="evt_old", created=1000)
    book.apply(first)
    book.apply(event("customer_balance.adjustment", command(-7), event_id="evt_new", created=1101))
    again = book.apply(first)
    assert again.outcome is Outcome.APPLIED
    assert legs(again) == [("adjustment", -5, -17)]


def test_retention_keeps_ids_within_the_window() -> None:
    book = Book(retention=100)
    first = event("customer_balance.adjustment", command(-5), event_id="evt_keep", created=1000)
    book.apply(first)
    book.apply(event("customer_balance.adjustment", command(-7), event_id="evt_later", created=1100))
    assert book.apply(first).outcome is Outcome.SKIPPED_DUPLICATE
    assert book.balance() == -12


def test_default_retention_is_at_least_seven_days(book: Book) -> None:
    first = event("customer_balance.adjustment", command(-5), event_id="evt_week", created=T0)
    book.apply(first)
    book.apply(event("customer_balance.adjustment", command(-7), created=T0 + WEEK))
    assert book.apply(first).outcome is Outcome.SKIPPED_DUPLICATE
    assert book.balance() == -12


def test_rejected_event_is_not_remembered(book: Book) -> None:
    adjust(book, -500)
    bad = event("customer_balance.initial", command(-100), event_id="evt_rejected")
    assert book.reject(bad).code is ErrorCode.INITIAL_AFTER_TRANSACTIONS
    assert book.reject(bad).code is ErrorCode.INITIAL_AFTER_TRANSACTIONS
    # the same id with an acceptable payload is applied: the rejected one left no trace.
    fixed = book.apply(event("customer_balance.adjustment", command(-100), event_id="evt_rejected"))
    assert legs(fixed) == [("adjustment", -100, -600)]


def test_rejected_invalid_object_is_rejected_again(book: Book) -> None:
    bad = event("customer_balance.adjustment", command(0), event_id="evt_zero")
    assert book.reject(bad).code is ErrorCode.INVALID_AMOUNT
    assert book.reject(bad).code is ErrorCode.INVALID_AMOUNT
    assert book.transactions == []


def test_per_object_effects_survive_dedupe_expiry() -> None:
    book = Book(retention=10)
    book.apply(event("customer_balance.adjustment", command(-500), created=0))
    fin = event("invoice.finalized", invoice("in_exp", 300), event_id="evt_fin_exp", created=1)
    book.apply(fin)
    book.apply(event("customer_balance.adjustment", command(-1), created=1000))
    again = book.apply(fin)  # id forgotten, but the invoice remembers it was finalized
    assert again.outcome is Outcome.APPLIED
    assert again.transactions == ()
    assert book.balance() == -201


# --- livemode --------------------------------------------------------------------------------


def test_live_event_on_a_test_customer_is_rejected(book: Book) -> None:
    adjust(book, -500)
    err = book.reject(event("customer_balance.adjustment", command(-100), livemode=True))
    assert err.code is ErrorCode.LIVEMODE_MISMATCH
    err = book.reject(event("invoice.marked_uncollectible", invoice("in_live", 100), livemode=True))
    assert err.code is ErrorCode.LIVEMODE_MISMATCH
    assert book.balance() == -500


def test_test_event_on_a_live_customer_is_rejected(book: Book) -> None:
    live = book.apply(event("customer_balance.adjustment", command(-500), livemode=True))
    assert live.transactions[0].livemode is True
    assert live.summary is not None and live.summary.livemode is True
    err = book.reject(event("invoice.finalized", invoice("in_t", 300), livemode=False))
    assert err.code is ErrorCode.LIVEMODE_MISMATCH
    assert book.balance() == -500


def test_first_applied_event_pins_the_customers_livemode(book: Book) -> None:
    # §2 "A customer's events must all have the same livemode": a live event that was applied (with no
    # leg) is one of the customer's events, so later test-mode traffic for that customer is rejected.
    live = book.apply(event("invoice.finalized", invoice("in_pin", 1000), livemode=True))
    assert live.outcome is Outcome.APPLIED and live.transactions == ()
    err = book.reject(event("customer_balance.adjustment", command(-5), livemode=False))
    assert err.code is ErrorCode.LIVEMODE_MISMATCH


def test_livemode_is_per_customer(book: Book) -> None:
    adjust(book, -500)
    other = book.apply(event("customer_balance.adjustment", command(-100, customer=OTHER_CUSTOMER), livemode=True))
    assert [(t.customer, t.livemode) for t in other.transactions] == [(OTHER_CUSTOMER, True)]


# --- summaries -------------------------------------------------------------------------------


def test_summary_one_entry_per_currency_sorted(book: Book) -> None:
    adjust(book, -100, "usd")
    adjust(book, -200, "eur")
    adjust(book, 300, "jpy")
    result = book.apply(event("customer_balance.adjustment", command(-5, "aud")))
    values = summary_values(result.summary)
    assert list(values) == ["aud", "eur", "jpy", "usd"]
    assert values == {"aud": (5, 5), "eur": (200, 200), "jpy": (0, 0), "usd": (100, 100)}
    assert result.summary is not None
    assert result.summary.customer == CUSTOMER
    assert result.summary.livemode is False
    assert all(
        b.ledger_balance.type == "monetary" and b.available_balance.type == "monetary" for b in result.summary.balances
    )


def test_first_event_with_legs_publishes_even_at_value_zero(book: Book) -> None:
    first = book.apply(event("customer_balance.adjustment", command(100)))
    assert summary_values(first.summary) == {"usd": (0, 0)}
    # debit-only change: value stays 0, nothing to publish.
    second = book.apply(event("customer_balance.adjustment", command(50)))
    assert legs(second) == [("adjustment", 50, 150)]
    assert second.summary is None
    third = book.apply(event("customer_balance.adjustment", command(-200)))
    assert summary_values(third.summary) == {"usd": (50, 50)}


def test_summary_published_on_each_credit_change(book: Book) -> None:
    first = book.apply(event("customer_balance.adjustment", command(-500)))
    assert summary_values(first.summary) == {"usd": (500, 500)}
    second = book.apply(event("invoice.finalized", invoice("in_sum", 300)))
    assert summary_values(second.summary) == {"usd": (200, 200)}


def test_summary_skipped_when_ledger_changes_but_summary_does_not(book: Book) -> None:
    book.apply(event("customer_balance.adjustment", command(30)))
    result = book.apply(event("invoice.finalized", invoice("in_same", 1000)))
    assert legs(result) == [("applied_to_invoice", -30, 0)]
    assert result.summary is None


def test_new_ledger_publishes_even_as_a_debit(book: Book) -> None:
    book.apply(event("customer_balance.adjustment", command(-500)))
    result = book.apply(event("customer_balance.adjustment", command(100, "eur")))
    assert summary_values(result.summary) == {"eur": (0, 0), "usd": (500, 500)}


def test_no_summary_without_legs(book: Book) -> None:
    adjust(book, -500)
    assert book.apply(event("invoice.finalized", invoice("in_nolegs", 0))).summary is None
    assert book.apply(event("credit_note.created", credit_note("cn_nolegs", None))).summary is None


def test_summarise_values_are_the_credit_held() -> None:
    state = CustomerState(livemode=True, balances={"usd": -250, "eur": 40, "gbp": 0})
    summary = summarise("cus_S", state)
    dumped = json.loads(summary.model_dump_json())
    assert dumped == {
        "object": "billing.credit_balance_summary",
        "balances": [
            {
                "available_balance": {"monetary": {"currency": c, "value": v}, "type": "monetary"},
                "ledger_balance": {"monetary": {"currency": c, "value": v}, "type": "monetary"},
            }
            for c, v in (("eur", 0), ("gbp", 0), ("usd", 250))
        ],
        "customer": "cus_S",
        "livemode": True,
    }


# --- §6 worked example -----------------------------------------------------------------------


def test_worked_example_records_and_summaries(book: Book) -> None:
    from worker.core.decode import decode

    adj_raw = (EXAMPLES_DIR / "event_adjustment_command.json").read_bytes()
    fin_raw = (EXAMPLES_DIR / "event_invoice_finalized.json").read_bytes()
    first = book.apply(decode(adj_raw, 1024 * 1024))
    second = book.apply(decode(fin_raw, 1024 * 1024))

    seed_txn = load_json(EXAMPLES_DIR / "customer_balance_transaction.json")
    seed_summary = load_json(EXAMPLES_DIR / "credit_balance_summary.json")
    expected_first = {
        "id": expected_txn_id("evt_cmd_support_ticket_4711", 0),
        "object": "customer_balance_transaction",
        "amount": -500,
        "checkout_session": None,
        "created": 1700000000,
        "credit_note": None,
        "currency": "usd",
        "customer": "cus_NcjdgdwZyI9Rj7",
        "description": "Goodwill credit",
        "ending_balance": -500,
        "invoice": None,
        "livemode": False,
        "metadata": {"ticket": "4711"},
        "type": "adjustment",
    }
    expected_second = {
        "id": expected_txn_id("evt_1QxInvoiceFinalized0001", 0),
        "object": "customer_balance_transaction",
        "amount": 300,
        "checkout_session": None,
        "created": 1700000100,
        "credit_note": None,
        "currency": "usd",
        "customer": "cus_NcjdgdwZyI9Rj7",
        "description": None,
        "ending_balance": -200,
        "invoice": "in_1QxExample0001",
        "livemode": False,
        "metadata": {},
        "type": "applied_to_invoice",
    }
    got = [json.loads(t.model_dump_json()) for t in (*first.transactions, *second.transactions)]
    assert got == [expected_first, expected_second]
    for record in got:
        assert list(record) == list(seed_txn)

    def expected_summary(value: int) -> dict[str, object]:
        money = {"monetary": {"currency": "usd", "value": value}, "type": "monetary"}
        return {
            "object": "billing.credit_balance_summary",
            "balances": [{"available_balance": money, "ledger_balance": money}],
            "customer": "cus_NcjdgdwZyI9Rj7",
            "livemode": False,
        }

    assert first.summary is not None and second.summary is not None
    summaries = [json.loads(s.model_dump_json()) for s in (first.summary, second.summary)]
    assert summaries == [expected_summary(500), expected_summary(200)]
    for s in summaries:
        assert list(s) == list(seed_summary)
        assert list(s["balances"][0]) == list(seed_summary["balances"][0])
        assert list(s["balances"][0]["ledger_balance"]) == list(seed_summary["balances"][0]["ledger_balance"])
        assert list(s["balances"][0]["ledger_balance"]["monetary"]) == list(
            seed_summary["balances"][0]["ledger_balance"]["monetary"]
        )


def test_worked_example_replays_identically() -> None:
    from worker.core.decode import decode

    def run() -> list[str]:
        b = Book()
        for name in ("event_adjustment_command.json", "event_invoice_finalized.json"):
            b.apply(decode((EXAMPLES_DIR / name).read_bytes(), 1024 * 1024))
        return [t.model_dump_json() for t in b.transactions]

    assert run() == run()
    assert len(run()) == 2
