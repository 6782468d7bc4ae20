"""Outbound records, with exactly the field sets of Stripe's objects (spec §4)."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

TransactionType = Literal[
    "adjustment",
    "applied_to_invoice",
    "checkout_session_subscription_payment",
    "checkout_session_subscription_payment_canceled",
    "credit_note",
    "initial",
    "invoice_overpaid",
    "invoice_too_large",
    "invoice_too_small",
    "migration",
    "unapplied_from_invoice",
    "unspent_receiver_credit",
]
"""The 12 transaction types the ledger produces."""

TransactionRecord = dict[str, Any]
"""A `CustomerBalanceTransaction` as the JSON-ready dict the worker sends, its fields in the model's order."""

SummaryRecord = dict[str, Any]
"""A `CreditBalanceSummary` as the JSON-ready dict the worker sends, its fields in the model's order."""


class Outbound(BaseModel):
    """Base of every outbound record: immutable, no extra fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CustomerBalanceTransaction(Outbound):
    """Stripe's `customer_balance_transaction`: one leg of one event."""

    id: str
    object: Literal["customer_balance_transaction"] = "customer_balance_transaction"
    amount: int
    checkout_session: str | None = None
    created: int
    credit_note: str | None = None
    currency: str
    customer: str
    description: str | None = None
    ending_balance: int
    invoice: str | None = None
    livemode: bool
    metadata: dict[str, str] = {}
    type: TransactionType


class Monetary(Outbound):
    """An amount of one currency, in minor units."""

    currency: str
    value: int


class BalanceAmount(Outbound):
    """A typed balance amount; only `monetary` exists."""

    monetary: Monetary
    type: Literal["monetary"] = "monetary"


class CreditBalance(Outbound):
    """The credit held in one currency."""

    available_balance: BalanceAmount
    ledger_balance: BalanceAmount


class CreditBalanceSummary(Outbound):
    """Stripe's `billing.credit_balance_summary` of one customer."""

    object: Literal["billing.credit_balance_summary"] = "billing.credit_balance_summary"
    balances: list[CreditBalance]
    customer: str
    livemode: bool
