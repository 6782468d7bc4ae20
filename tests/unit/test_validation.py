"""Object checks and their order (spec §1, §4): invalid_object ... initial_after_transactions."""

from typing import Any

import pytest

from tests.unit.conftest import (
    CUSTOMER,
    MINIMUMS,
    Book,
    command,
    credit_note,
    event,
    invoice,
    legs,
    raw_event,
    session,
    to_bytes,
)
from worker.core.decode import decode
from worker.core.errors import ErrorCode, LedgerError
from worker.core.ledger import Outcome, customer_of

BAD_INTEGERS = ["500", 500.0, 500.5, True, False, [500], {"value": 500}]
BAD_INTEGER_IDS = ["string", "float-integral", "float", "true", "false", "list", "object"]


def code_of(book: Book, event_type: str, obj: Any, **kw: Any) -> ErrorCode:
    return book.reject(event(event_type, obj, **kw)).code


# --- amounts must be JSON integers -----------------------------------------------------------


@pytest.mark.parametrize("value", BAD_INTEGERS, ids=BAD_INTEGER_IDS)
@pytest.mark.parametrize(
    "event_type",
    [
        "customer_balance.adjustment",
        "customer_balance.initial",
        "customer_balance.migration",
        "customer_balance.unspent_receiver_credit",
    ],
)
def test_command_amount_must_be_an_integer(book: Book, event_type: str, value: Any) -> None:
    assert code_of(book, event_type, command(value)) is ErrorCode.INVALID_OBJECT


@pytest.mark.parametrize("value", [*BAD_INTEGERS, None], ids=[*BAD_INTEGER_IDS, "null"])
def test_invoice_total_must_be_an_integer(book: Book, value: Any) -> None:
    obj = invoice("in_x", total=None)
    obj["total"] = value
    assert code_of(book, "invoice.finalized", obj) is ErrorCode.INVALID_OBJECT


def test_invoice_total_missing(book: Book) -> None:
    assert code_of(book, "invoice.finalized", invoice("in_x", total=None)) is ErrorCode.INVALID_OBJECT


@pytest.mark.parametrize("value", BAD_INTEGERS, ids=BAD_INTEGER_IDS)
@pytest.mark.parametrize("field", ["amount_overpaid", "amount_paid", "amount_due"])
def test_paid_amounts_must_be_integers(book: Book, field: str, value: Any) -> None:
    obj = invoice("in_p", None, amount_overpaid=None, amount_paid=1200, amount_due=1000)
    obj[field] = value
    assert code_of(book, "invoice.paid", obj) is ErrorCode.INVALID_OBJECT


@pytest.mark.parametrize("missing", ["amount_paid", "amount_due"])
def test_paid_without_amount_overpaid_needs_paid_and_due(book: Book, missing: str) -> None:
    obj = invoice("in_p", None, amount_paid=1200, amount_due=1000)
    del obj[missing]
    assert code_of(book, "invoice.overpaid", obj) is ErrorCode.INVALID_OBJECT


@pytest.mark.parametrize("value", BAD_INTEGERS, ids=BAD_INTEGER_IDS)
def test_credit_amount_must_be_an_integer(book: Book, value: Any) -> None:
    assert code_of(book, "credit_note.created", credit_note("cn_x", value)) is ErrorCode.INVALID_OBJECT


@pytest.mark.parametrize("value", BAD_INTEGERS, ids=BAD_INTEGER_IDS)
@pytest.mark.parametrize("event_type", ["checkout.session.created", "checkout.session.completed"])
def test_amount_total_must_be_an_integer(book: Book, event_type: str, value: Any) -> None:
    book.apply(event("customer_balance.adjustment", command(-500)))
    assert code_of(book, event_type, session("cs_x", value)) is ErrorCode.INVALID_OBJECT


# --- invalid_amount --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event_type",
    [
        "customer_balance.adjustment",
        "customer_balance.initial",
        "customer_balance.migration",
        "customer_balance.unspent_receiver_credit",
    ],
)
def test_zero_command_amount(book: Book, event_type: str) -> None:
    assert code_of(book, event_type, command(0)) is ErrorCode.INVALID_AMOUNT


def test_positive_unspent_receiver_credit(book: Book) -> None:
    assert code_of(book, "customer_balance.unspent_receiver_credit", command(1)) is ErrorCode.INVALID_AMOUNT


def test_negative_credit_amount(book: Book) -> None:
    assert code_of(book, "credit_note.created", credit_note("cn_neg", -1)) is ErrorCode.INVALID_AMOUNT


# --- missing fields / wrong types ------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "obj", "field"),
    [
        ("invoice.finalized", invoice("in_m", 100), "id"),
        ("invoice.finalized", invoice("in_m", 100), "currency"),
        ("invoice.finalized", invoice("in_m", 100), "customer"),
        ("credit_note.created", credit_note("cn_m", 100), "id"),
        ("credit_note.created", credit_note("cn_m", 100), "currency"),
        ("credit_note.created", credit_note("cn_m", 100), "customer"),
        ("credit_note.created", credit_note("cn_m", 100), "invoice"),
        ("customer_balance.adjustment", command(-5), "amount"),
        ("customer_balance.adjustment", command(-5), "currency"),
        ("customer_balance.adjustment", command(-5), "customer"),
        ("checkout.session.created", session("cs_m", 100), "id"),
        ("checkout.session.created", session("cs_m", 100), "currency"),
    ],
)
def test_missing_field_the_rule_reads(book: Book, event_type: str, obj: dict[str, Any], field: str) -> None:
    book.apply(event("customer_balance.adjustment", command(-500)))
    obj = dict(obj)
    del obj[field]
    assert code_of(book, event_type, obj) is ErrorCode.INVALID_OBJECT


@pytest.mark.parametrize("customer", ["", 42, None, {"name": "no id"}, {"id": ""}, {"id": 7}, ["cus_1"]])
def test_bad_customer(book: Book, customer: Any) -> None:
    for event_type, obj in (
        ("invoice.finalized", invoice("in_c", 100, customer=customer)),
        ("customer_balance.adjustment", command(-5, customer=customer)),
        ("credit_note.created", credit_note("cn_c", 5, customer=customer)),
    ):
        env = event(event_type, obj)
        with pytest.raises(LedgerError) as info:
            customer_of(env)
        assert info.value.code is ErrorCode.INVALID_OBJECT
        assert book.reject(env).code is ErrorCode.INVALID_OBJECT


def test_expanded_customer_object_is_accepted(book: Book) -> None:
    expanded = {"id": CUSTOMER, "object": "customer", "email": None, "livemode": False}
    result = book.apply(event("customer_balance.adjustment", command(-5, customer=expanded)))
    assert result.customer == CUSTOMER
    assert result.transactions[0].customer == CUSTOMER
    fin = book.apply(event("invoice.finalized", invoice("in_e", 100, customer={"id": CUSTOMER})))
    assert legs(fin) == [("applied_to_invoice", 5, 0)]
    cn = book.apply(event("credit_note.created", credit_note("cn_e", 5, customer={"id": CUSTOMER})))
    assert cn.customer == CUSTOMER


def test_customer_of_string_and_expanded() -> None:
    assert customer_of(event("invoice.voided", invoice(customer="cus_S"))) == "cus_S"
    assert customer_of(event("invoice.voided", invoice(customer={"id": "cus_E", "object": "customer"}))) == "cus_E"
    assert customer_of(event("checkout.session.expired", session(customer=None))) is None


# --- currency --------------------------------------------------------------------------------


@pytest.mark.parametrize("given", ["USD", "Usd", "uSd"])
def test_currency_is_normalised_to_lowercase(book: Book, given: str) -> None:
    t = book.apply(event("customer_balance.adjustment", command(-5, given))).transactions[0]
    assert t.currency == "usd"
    fin = book.apply(event("invoice.finalized", invoice(f"in_{given}", 2, currency=given)))
    assert [(x.currency, x.amount, x.ending_balance) for x in fin.transactions] == [("usd", 2, -3)]
    assert (
        book.apply(event("credit_note.created", credit_note(f"cn_{given}", 1, currency=given))).transactions[0].currency
        == "usd"
    )


@pytest.mark.parametrize("bad", ["usdd", "us", "", "u1d", "us ", "usd\n", "ÜSD", "ｕｓｄ", 840, None, ["usd"]])
def test_malformed_currency_is_invalid_object(book: Book, bad: Any) -> None:
    assert code_of(book, "customer_balance.adjustment", command(-5, bad)) is ErrorCode.INVALID_OBJECT
    assert code_of(book, "invoice.finalized", invoice("in_bad", 100, currency=bad)) is ErrorCode.INVALID_OBJECT
    assert code_of(book, "credit_note.created", credit_note("cn_bad", 5, currency=bad)) is ErrorCode.INVALID_OBJECT


@pytest.mark.parametrize("bad", ["usdd", "us", "u1d", "ÜSD", 840, None])
def test_malformed_session_currency_is_invalid_object(book: Book, bad: Any) -> None:
    book.apply(event("customer_balance.adjustment", command(-500)))
    assert code_of(book, "checkout.session.created", session("cs_bad", 100, currency=bad)) is ErrorCode.INVALID_OBJECT


@pytest.mark.parametrize("code", ["xyz", "XYZ", "btc", "inr", "brl"])
def test_unknown_currency_is_unsupported(book: Book, code: str) -> None:
    assert code_of(book, "customer_balance.adjustment", command(-5, code)) is ErrorCode.UNSUPPORTED_CURRENCY
    assert code_of(book, "invoice.finalized", invoice("in_u", 100, currency=code)) is ErrorCode.UNSUPPORTED_CURRENCY
    assert code_of(book, "credit_note.created", credit_note("cn_u", 5, currency=code)) is ErrorCode.UNSUPPORTED_CURRENCY


def test_unknown_session_currency_is_unsupported(book: Book) -> None:
    book.apply(event("customer_balance.adjustment", command(-500)))
    assert (
        code_of(book, "checkout.session.completed", session("cs_u", 100, currency="xyz"))
        is ErrorCode.UNSUPPORTED_CURRENCY
    )


@pytest.mark.parametrize("currency", sorted(MINIMUMS))
def test_every_listed_currency_is_supported(book: Book, currency: str) -> None:
    result = book.apply(event("customer_balance.adjustment", command(-5, currency.upper())))
    assert [(t.currency, t.amount) for t in result.transactions] == [(currency, -5)]


# --- description and metadata ----------------------------------------------------------------


def test_description_limit(book: Book) -> None:
    ok = book.apply(event("customer_balance.adjustment", command(-5, description="d" * 350)))
    assert ok.transactions[0].description == "d" * 350
    assert code_of(book, "customer_balance.adjustment", command(-5, description="d" * 351)) is ErrorCode.INVALID_OBJECT


def test_description_counts_characters_not_bytes(book: Book) -> None:
    text = "é€😀" * 116 + "ab"  # 350 characters, far more bytes
    assert len(text) == 350
    assert (
        book.apply(event("customer_balance.adjustment", command(-5, description=text))).transactions[0].description
        == text
    )


@pytest.mark.parametrize("value", [5, True, ["x"], {"x": "y"}])
def test_description_must_be_a_string(book: Book, value: Any) -> None:
    assert code_of(book, "customer_balance.adjustment", command(-5, description=value)) is ErrorCode.INVALID_OBJECT


def test_metadata_limits_accepted_at_the_edge(book: Book) -> None:
    metadata = {f"k{i:02d}" + "x" * 37: "v" * 500 for i in range(50)}
    assert all(len(k) == 40 for k in metadata)
    t = book.apply(event("customer_balance.migration", command(-5, metadata=metadata))).transactions[0]
    assert t.metadata == metadata


@pytest.mark.parametrize(
    "metadata",
    [
        {f"k{i}": "v" for i in range(51)},
        {"k" * 41: "v"},
        {"key": "v" * 501},
        {"key": 5},
        {"key": None},
        {"key": True},
        {"key": {"nested": "x"}},
        {"key": ["x"]},
        ["key", "value"],
        "key=value",
    ],
    ids=["51-keys", "key-41", "value-501", "int", "null", "bool", "object", "list", "metadata-list", "string"],
)
def test_metadata_violations_are_invalid_object(book: Book, metadata: Any) -> None:
    assert code_of(book, "customer_balance.adjustment", command(-5, metadata=metadata)) is ErrorCode.INVALID_OBJECT


SECRET = "s3cr3t-SSN-078-05-1120"


@pytest.mark.parametrize(
    ("event_type", "obj", "code"),
    [
        ("customer_balance.adjustment", command(-5, metadata={"a": SECRET, "b": 5}), ErrorCode.INVALID_OBJECT),
        ("customer_balance.adjustment", command(-5, metadata={"a": SECRET + "x" * 500}), ErrorCode.INVALID_OBJECT),
        (
            "customer_balance.adjustment",
            command(-5, metadata={"a": SECRET, **{f"k{i}": "v" for i in range(50)}}),
            ErrorCode.INVALID_OBJECT,
        ),
        ("customer_balance.adjustment", command("5", metadata={"a": SECRET}), ErrorCode.INVALID_OBJECT),
        ("customer_balance.adjustment", command(-5, "xyz", metadata={"a": SECRET}), ErrorCode.UNSUPPORTED_CURRENCY),
        ("customer_balance.adjustment", command(0, metadata={"a": SECRET}), ErrorCode.INVALID_AMOUNT),
        ("customer_balance.unspent_receiver_credit", command(5, metadata={"a": SECRET}), ErrorCode.INVALID_AMOUNT),
        ("customer_balance.adjustment", command(-5, metadata={"a": [SECRET]}), ErrorCode.INVALID_OBJECT),
    ],
)
def test_error_messages_never_contain_metadata_values(
    book: Book, event_type: str, obj: dict[str, Any], code: ErrorCode
) -> None:
    err = book.reject(event(event_type, obj))
    assert err.code is code
    assert SECRET not in err.message
    assert SECRET not in str(err)
    assert SECRET not in repr(err.args)


def test_livemode_and_initial_errors_never_contain_metadata_values(book: Book) -> None:
    book.apply(event("customer_balance.adjustment", command(-5)))
    for env, code in (
        (
            event("customer_balance.adjustment", command(-5, metadata={"a": SECRET}), livemode=True),
            ErrorCode.LIVEMODE_MISMATCH,
        ),
        (event("customer_balance.initial", command(-5, metadata={"a": SECRET})), ErrorCode.INITIAL_AFTER_TRANSACTIONS),
    ):
        err = book.reject(env)
        assert err.code is code
        assert SECRET not in str(err)


# --- check order -----------------------------------------------------------------------------


def test_missing_field_beats_unsupported_currency(book: Book) -> None:
    obj = command(-5, "xyz")
    del obj["amount"]
    assert code_of(book, "customer_balance.adjustment", obj) is ErrorCode.INVALID_OBJECT
    assert code_of(book, "invoice.finalized", invoice("in_o", None, currency="xyz")) is ErrorCode.INVALID_OBJECT


def test_wrong_type_beats_unsupported_currency(book: Book) -> None:
    assert code_of(book, "customer_balance.adjustment", command("5", "xyz")) is ErrorCode.INVALID_OBJECT
    assert code_of(book, "credit_note.created", credit_note("cn_o", 1.5, currency="xyz")) is ErrorCode.INVALID_OBJECT


def test_unsupported_currency_beats_invalid_amount(book: Book) -> None:
    assert code_of(book, "customer_balance.adjustment", command(0, "xyz")) is ErrorCode.UNSUPPORTED_CURRENCY
    assert (
        code_of(book, "customer_balance.unspent_receiver_credit", command(5, "xyz")) is ErrorCode.UNSUPPORTED_CURRENCY
    )
    assert (
        code_of(book, "credit_note.created", credit_note("cn_o", -5, currency="xyz")) is ErrorCode.UNSUPPORTED_CURRENCY
    )


def test_invalid_amount_beats_livemode_mismatch(book: Book) -> None:
    book.apply(event("customer_balance.adjustment", command(-5)))
    assert code_of(book, "customer_balance.adjustment", command(0), livemode=True) is ErrorCode.INVALID_AMOUNT
    assert code_of(book, "credit_note.created", credit_note("cn_o", -5), livemode=True) is ErrorCode.INVALID_AMOUNT


def test_earlier_checks_beat_livemode_mismatch(book: Book) -> None:
    book.apply(event("customer_balance.adjustment", command(-5)))
    assert code_of(book, "customer_balance.adjustment", command("5"), livemode=True) is ErrorCode.INVALID_OBJECT
    assert (
        code_of(book, "customer_balance.adjustment", command(5, "xyz"), livemode=True) is ErrorCode.UNSUPPORTED_CURRENCY
    )


def test_livemode_mismatch_beats_initial_after_transactions(book: Book) -> None:
    book.apply(event("customer_balance.adjustment", command(-5)))
    assert code_of(book, "customer_balance.initial", command(-5), livemode=True) is ErrorCode.LIVEMODE_MISMATCH


def test_unhandled_type_is_skipped_before_object_checks(book: Book) -> None:
    for obj in ({}, {"customer": 5}, command("bad", "xyz"), {"customer": "", "amount": 0}):
        result = book.apply(event("customer_balance.refund", obj))
        assert result.outcome is Outcome.SKIPPED_UNHANDLED
        assert result.transactions == () and result.summary is None


def test_unhandled_type_is_skipped_even_with_livemode_mismatch(book: Book) -> None:
    book.apply(event("customer_balance.adjustment", command(-5)))
    assert book.apply(event("invoice.created", invoice("in_z", 1), livemode=True)).outcome is Outcome.SKIPPED_UNHANDLED


def test_duplicate_id_is_skipped_before_object_checks(book: Book) -> None:
    book.apply(event("customer_balance.adjustment", command(-5), event_id="evt_seen"))
    for obj in (
        command("5"),
        command(0),
        command(-5, "xyz"),
        command(-5, metadata={"k": 1}),
        command(-5, description="x" * 400),
    ):
        result = book.apply(event("customer_balance.adjustment", obj, event_id="evt_seen"))
        assert result.outcome is Outcome.SKIPPED_DUPLICATE
        assert result.transactions == ()
    # and before the livemode / initial checks too
    assert (
        book.apply(event("customer_balance.initial", command(-5), event_id="evt_seen", livemode=True)).outcome
        is Outcome.SKIPPED_DUPLICATE
    )
    assert book.balance() == -5


def test_envelope_checks_come_before_skipping_unhandled() -> None:
    raw = raw_event("plan.created", {"id": "price_1"})
    raw["livemode"] = "yes"
    with pytest.raises(LedgerError) as info:
        decode(to_bytes(raw), 1024 * 1024)
    assert info.value.code is ErrorCode.INVALID_ENVELOPE


def test_errors_carry_their_code_in_the_message() -> None:
    err = LedgerError(ErrorCode.INVALID_AMOUNT, "data.object.amount: must not be zero")
    assert err.code is ErrorCode.INVALID_AMOUNT
    assert err.message == "data.object.amount: must not be zero"
    assert "invalid_amount" in str(err)
