"""Record shapes (spec §4, examples/), inbound models on real Stripe fixtures, dead letters."""

import base64
import json
import typing
from typing import Any

import pytest
from pydantic import ValidationError

from tests.unit.conftest import (
    CUSTOMER,
    EXAMPLES_DIR,
    FIXTURES_DIR,
    TRANSACTION_TYPES,
    Book,
    event,
    load_json,
)
from worker.core.errors import ErrorCode
from worker.core.ledger import Outcome, customer_of
from worker.models.dead_letter import DeadLetter, DeadLetterError, DeadLetterSource, dead_letter, encode_bytes
from worker.models.events import CheckoutSessionObject, CreditNoteObject, FinalizedInvoice, PaidInvoice
from worker.models.records import (
    BalanceAmount,
    CreditBalance,
    CreditBalanceSummary,
    CustomerBalanceTransaction,
    Monetary,
    TransactionType,
)


def _key_tree(value: Any) -> Any:
    """The ordered key structure of a JSON value (lists by their first item)."""
    if isinstance(value, dict):
        return [(k, _key_tree(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_key_tree(value[0])] if value else []
    return None


def test_the_twelve_transaction_types() -> None:
    assert set(typing.get_args(TransactionType)) == TRANSACTION_TYPES
    assert len(TRANSACTION_TYPES) == 12


def test_transaction_serialises_with_the_example_keys_in_order() -> None:
    seed = load_json(EXAMPLES_DIR / "customer_balance_transaction.json")
    record = CustomerBalanceTransaction(
        id=seed["id"],
        amount=seed["amount"],
        created=seed["created"],
        currency=seed["currency"],
        customer=seed["customer"],
        ending_balance=seed["ending_balance"],
        livemode=seed["livemode"],
        type=seed["type"],
    )
    dumped = json.loads(record.model_dump_json())
    assert list(dumped) == list(seed)
    assert dumped == seed  # defaults: links null, description null, metadata {}, object set


def test_summary_serialises_with_the_example_keys_in_order() -> None:
    seed = load_json(EXAMPLES_DIR / "credit_balance_summary.json")
    amount = BalanceAmount(monetary=Monetary(currency="usd", value=1000))
    summary = CreditBalanceSummary(
        balances=[CreditBalance(available_balance=amount, ledger_balance=amount)],
        customer=seed["customer"],
        livemode=False,
    )
    dumped = json.loads(summary.model_dump_json())
    assert _key_tree(dumped) == _key_tree(seed)
    assert dumped == seed


def test_transaction_rejects_extra_fields_and_unknown_types() -> None:
    base: dict[str, Any] = {
        "id": "cbtxn_x", "amount": 1, "created": 0, "currency": "usd", "customer": CUSTOMER,
        "ending_balance": 1, "livemode": False, "type": "adjustment",
    }  # fmt: skip
    assert CustomerBalanceTransaction(**base).type == "adjustment"
    with pytest.raises(ValidationError):
        CustomerBalanceTransaction(**{**base, "customer_account": None})
    with pytest.raises(ValidationError):
        CustomerBalanceTransaction(**{**base, "type": "refund"})


def test_records_are_immutable() -> None:
    record = CustomerBalanceTransaction(
        id="cbtxn_x", amount=1, created=0, currency="usd", customer=CUSTOMER,
        ending_balance=1, livemode=False, type="adjustment",
    )  # fmt: skip
    with pytest.raises(ValidationError):
        record.amount = 2  # type: ignore[misc]


# --- inbound models accept full real Stripe objects ------------------------------------------


def test_stripe_invoice_fixture_parses_for_finalized_and_paid() -> None:
    raw = load_json(FIXTURES_DIR / "invoice.json")
    fin = FinalizedInvoice.model_validate(raw)
    assert (fin.id, fin.currency, fin.total) == (raw["id"], "usd", raw["total"])
    paid = PaidInvoice.model_validate(raw)
    assert paid.overpaid == raw["amount_overpaid"]


def test_stripe_credit_note_fixture_parses_without_credit_amount() -> None:
    raw = load_json(FIXTURES_DIR / "credit_note.json")
    assert "credit_amount" not in raw
    note = CreditNoteObject.model_validate(raw)
    assert note.id == raw["id"]
    assert not note.credit_amount  # missing counts as 0


def test_stripe_checkout_fixture_parses_with_null_customer_and_currency() -> None:
    raw = load_json(FIXTURES_DIR / "checkout_session.json")
    assert raw["customer"] is None and raw["currency"] is None and raw["mode"] == "payment"
    s = CheckoutSessionObject.model_validate(raw)
    assert s.id == raw["id"]
    assert s.customer is None


INVOICE_TYPES = [
    "invoice.finalized",
    "invoice.voided",
    "invoice.marked_uncollectible",
    "invoice.paid",
    "invoice.overpaid",
]
CREDIT_NOTE_TYPES = ["credit_note.created", "credit_note.voided"]
CHECKOUT_TYPES = [
    "checkout.session.created",
    "checkout.session.completed",
    "checkout.session.expired",
    "checkout.session.async_payment_failed",
]


@pytest.mark.parametrize("event_type", INVOICE_TYPES)
def test_real_invoice_applies_as_is(book: Book, event_type: str) -> None:
    raw = load_json(FIXTURES_DIR / "invoice.json")
    result = book.apply(event(event_type, raw, livemode=raw["livemode"]))
    assert result.outcome is Outcome.APPLIED
    assert result.customer == raw["customer"]
    if event_type in ("invoice.paid", "invoice.overpaid"):
        # amount_overpaid is present and not null: invoice_overpaid, amount = -amount_overpaid.
        assert [(t.type, t.amount, t.invoice) for t in result.transactions] == [
            ("invoice_overpaid", -raw["amount_overpaid"], raw["id"])
        ]
    else:
        # finalized: B = 0, total 1000 usd >= 50: no leg; voided/uncollectible: nothing to reverse.
        assert result.transactions == ()


@pytest.mark.parametrize("event_type", CREDIT_NOTE_TYPES)
def test_real_credit_note_applies_as_is(book: Book, event_type: str) -> None:
    raw = load_json(FIXTURES_DIR / "credit_note.json")
    result = book.apply(event(event_type, raw, livemode=raw["livemode"]))
    assert result.outcome is Outcome.APPLIED
    assert result.customer == raw["customer"]
    assert result.transactions == ()  # no credit_amount counts as 0


@pytest.mark.parametrize("event_type", CHECKOUT_TYPES)
def test_real_checkout_session_applies_as_is(book: Book, event_type: str) -> None:
    raw = load_json(FIXTURES_DIR / "checkout_session.json")
    env = event(event_type, raw, livemode=raw["livemode"])
    assert customer_of(env) is None
    result = book.apply(env)
    assert result.outcome is Outcome.APPLIED
    assert result.transactions == ()
    assert result.summary is None


def test_real_invoice_with_expanded_customer_object(book: Book) -> None:
    raw = load_json(FIXTURES_DIR / "invoice.json")
    expanded = load_json(FIXTURES_DIR / "billing_credit_balance_summary.json")["customer"]
    raw["customer"] = expanded
    result = book.apply(event("invoice.paid", raw))
    assert result.customer == expanded["id"]
    assert [t.customer for t in result.transactions] == [expanded["id"]]


# --- dead letters ----------------------------------------------------------------------------


def test_dead_letter_has_the_contract_shape() -> None:
    letter = DeadLetter(
        error=DeadLetterError(code=ErrorCode.INVALID_JSON, message="not UTF-8 JSON"),
        source=DeadLetterSource(topic="billing.invoice.events", partition=3, offset=42, key="cus_1", timestamp=17),
        payload="{",
        payload_encoding="utf-8",
        failed_at=1_700_000_000_000,
    )
    dumped = json.loads(letter.model_dump_json())
    assert set(dumped) == {"error", "source", "payload", "payload_encoding", "failed_at"}
    assert dumped["error"] == {"code": "invalid_json", "message": "not UTF-8 JSON"}
    assert dumped["source"] == {
        "topic": "billing.invoice.events",
        "partition": 3,
        "offset": 42,
        "key": "cus_1",
        "timestamp": 17,
    }
    with pytest.raises(ValidationError):
        DeadLetter.model_validate({**dumped, "payload_encoding": "latin-1"})


def test_every_error_code_of_the_contract_exists_in_order() -> None:
    contract = {
        "payload_too_large",
        "invalid_json",
        "invalid_envelope",
        "invalid_object",
        "unsupported_currency",
        "invalid_amount",
        "livemode_mismatch",
        "initial_after_transactions",
    }
    # the eight contract codes, in check order (extra, non-contract codes may follow them)
    assert [c.value for c in ErrorCode if c.value in contract] == [
        "payload_too_large",
        "invalid_json",
        "invalid_envelope",
        "invalid_object",
        "unsupported_currency",
        "invalid_amount",
        "livemode_mismatch",
        "initial_after_transactions",
    ]


def test_encode_bytes_keeps_utf8_text() -> None:
    assert encode_bytes('{"a": "€"}'.encode()) == ('{"a": "€"}', "utf-8")


def test_encode_bytes_uses_base64_otherwise() -> None:
    data = b"\xff\x00\xfe"
    text, encoding = encode_bytes(data)
    assert encoding == "base64"
    assert base64.b64decode(text) == data


def _source() -> DeadLetterSource:
    return DeadLetterSource(topic="billing.balance.commands", partition=0, offset=7, key=None, timestamp=None)


def test_dead_letter_keeps_utf8_payload_as_text() -> None:
    payload = b'{"id": "evt_\xe2\x82\xac"'
    letter = dead_letter(ErrorCode.INVALID_JSON, "bad", _source(), payload, 1_700_000_000)
    dumped = json.loads(letter.model_dump_json())
    assert dumped["payload"] == payload.decode()
    assert dumped["payload_encoding"] == "utf-8"
    assert dumped["error"] == {"code": "invalid_json", "message": "bad"}
    assert dumped["source"] == {
        "topic": "billing.balance.commands",
        "partition": 0,
        "offset": 7,
        "key": None,
        "timestamp": None,
    }
    assert dumped["failed_at"] == 1_700_000_000


def test_dead_letter_base64_for_non_utf8_payload_nothing_dropped() -> None:
    payload = bytes(range(256))
    letter = dead_letter(ErrorCode.INVALID_JSON, "bad", _source(), payload, 1)
    assert letter.payload_encoding == "base64"
    assert letter.payload is not None
    assert base64.b64decode(letter.payload) == payload
