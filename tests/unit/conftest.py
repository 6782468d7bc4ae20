"""Builders for envelopes and a small driver that threads customer state through `apply`.

Expected values in the tests are written from the contract (shared/spec/LEDGER.md),
never read back from the code; the helpers here only build inputs and collect outputs.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from worker import sample
from worker.core.decode import decode
from worker.core.errors import ErrorCode, LedgerError
from worker.core.ledger import Outcome, Result, apply, customer_of, is_handled
from worker.core.state import CustomerState
from worker.models.events import Envelope
from worker.models.records import CreditBalanceSummary, CustomerBalanceTransaction

SHARED_DIR = Path(__file__).resolve().parents[3] / "shared"  # beside the repository: /work/shared
SPEC_DIR = SHARED_DIR / "spec"
EXAMPLES_DIR = SPEC_DIR / "examples"
FIXTURES_DIR = SHARED_DIR / "fixtures" / "stripe"

CUSTOMER = "cus_Test0001"
OTHER_CUSTOMER = "cus_Test0002"
T0 = 1_700_000_000
WEEK = 7 * 24 * 3600

# Spec §1, written out again here (not imported from the code under test).
MINIMUMS: dict[str, int] = {
    "usd": 50, "eur": 50, "cad": 50, "aud": 50, "chf": 50, "nzd": 50, "sgd": 50,
    "gbp": 30, "jpy": 50, "hkd": 400, "mxn": 1000, "dkk": 250, "sek": 300, "nok": 300,
    "pln": 200, "czk": 1500, "huf": 17500,
}  # fmt: skip
MAXIMUM = 99_999_999

HANDLED_TYPES = (
    "invoice.finalized",
    "invoice.voided",
    "invoice.marked_uncollectible",
    "invoice.paid",
    "invoice.overpaid",
    "credit_note.created",
    "credit_note.voided",
    "checkout.session.created",
    "checkout.session.completed",
    "checkout.session.expired",
    "checkout.session.async_payment_failed",
    "customer_balance.adjustment",
    "customer_balance.initial",
    "customer_balance.migration",
    "customer_balance.unspent_receiver_credit",
)

TRANSACTION_TYPES = frozenset(
    {
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
    }
)

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def expected_txn_id(event_id: str, leg_index: int) -> str:
    """Spec §4, implemented independently: base-62 digits of SHA-256, least significant first."""
    n = int(hashlib.sha256(f"{event_id}:{leg_index}".encode()).hexdigest(), 16)
    out = ""
    for _ in range(24):
        r = n % 62
        n //= 62
        out += _ALPHABET[r]
    return "cbtxn_" + out


# --- envelope builders --------------------------------------------------------------------

_ids = itertools.count(1)


def next_event_id() -> str:
    return f"evt_test_{next(_ids):06d}"


def raw_event(
    event_type: str,
    obj: Any,
    *,
    event_id: str | None = None,
    created: int = T0,
    livemode: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """An envelope as a plain dict (what a producer would serialise)."""
    event_id = event_id if event_id is not None else next_event_id()
    return {**sample.envelope(event_id, event_type, obj, created, livemode), **extra}


def to_bytes(raw: Any) -> bytes:
    return orjson.dumps(raw)


def event(event_type: str, obj: Any, **kwargs: Any) -> Envelope:
    """An envelope as the worker sees it: serialised and decoded as a real message would be."""
    return decode(to_bytes(raw_event(event_type, obj, **kwargs)), 1024 * 1024)


def invoice(
    inv_id: str = "in_Test0001",
    total: int | None = 1000,
    *,
    customer: Any = CUSTOMER,
    currency: Any = "usd",
    **extra: Any,
) -> dict[str, Any]:
    obj: dict[str, Any] = {"id": inv_id, "object": "invoice", "customer": customer, "currency": currency}
    if total is not None:
        obj["total"] = total
    obj.update(extra)
    return obj


def credit_note(
    cn_id: str = "cn_Test0001",
    credit_amount: Any = 700,
    *,
    customer: Any = CUSTOMER,
    currency: Any = "usd",
    inv: Any = "in_Test0001",
    omit_credit_amount: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": cn_id,
        "object": "credit_note",
        "customer": customer,
        "currency": currency,
        "invoice": inv,
    }
    if not omit_credit_amount:
        obj["credit_amount"] = credit_amount
    obj.update(extra)
    return obj


def session(
    cs_id: str = "cs_test_0001",
    amount_total: Any = 1000,
    *,
    customer: Any = CUSTOMER,
    currency: Any = "usd",
    mode: Any = "subscription",
    **extra: Any,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": cs_id,
        "object": "checkout.session",
        "customer": customer,
        "currency": currency,
        "amount_total": amount_total,
        "mode": mode,
    }
    obj.update(extra)
    return obj


def command(
    amount: Any = -500,
    currency: Any = "usd",
    *,
    customer: Any = CUSTOMER,
    description: Any = None,
    metadata: Any = None,
    **extra: Any,
) -> dict[str, Any]:
    obj: dict[str, Any] = {"customer": customer, "amount": amount, "currency": currency}
    if description is not None:
        obj["description"] = description
    if metadata is not None:
        obj["metadata"] = metadata
    obj.update(extra)
    return obj


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


# --- a driver that keeps per-customer state like the worker does ---------------------------


@dataclass
class Step:
    """What became of one input."""

    envelope: Envelope
    result: Result | None = None
    error: LedgerError | None = None


@dataclass
class Book:
    """Threads `apply` over a stream, keeping state per customer (keyed by `customer_of`)."""

    retention: int | None = None
    states: dict[str, CustomerState] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)

    def apply(self, env: Envelope) -> Result:
        """Apply one envelope; raises LedgerError like `apply` does (after recording it)."""
        try:
            customer = customer_of(env) if is_handled(env.type) else None
            state = self.states.get(customer) if customer is not None else None
            if self.retention is None:
                result = apply(state, env)
            else:
                result = apply(state, env, dedupe_retention_s=self.retention)
        except LedgerError as exc:
            self.steps.append(Step(env, error=exc))
            raise
        if result.state is not None:
            assert result.customer is not None
            self.states[result.customer] = result.state
        self.steps.append(Step(env, result=result))
        return result

    def reject(self, env: Envelope) -> LedgerError:
        """Apply an envelope that must be rejected, and return the error."""
        with pytest.raises(LedgerError) as info:
            self.apply(env)
        return info.value

    def run(self, envs: Iterable[Envelope]) -> list[Step]:
        for env in envs:
            with contextlib.suppress(LedgerError):
                self.apply(env)
        return self.steps

    @property
    def transactions(self) -> list[CustomerBalanceTransaction]:
        return [t for s in self.steps if s.result is not None for t in s.result.transactions]

    @property
    def summaries(self) -> list[CreditBalanceSummary]:
        return [s.result.summary for s in self.steps if s.result is not None and s.result.summary is not None]

    def balance(self, customer: str = CUSTOMER, currency: str = "usd") -> int:
        """The balance from the emitted records (the last ending_balance), 0 when none."""
        ending = 0
        for t in self.transactions:
            if t.customer == customer and t.currency == currency:
                ending = t.ending_balance
        return ending


def legs(result: Result) -> list[tuple[str, int, int]]:
    """(type, amount, ending_balance) of each leg, for compact assertions."""
    return [(t.type, t.amount, t.ending_balance) for t in result.transactions]


def summary_values(summary: CreditBalanceSummary | None) -> dict[str, tuple[int, int]]:
    """currency -> (ledger value, available value) of a summary, keeping its order."""
    assert summary is not None
    return {
        b.ledger_balance.monetary.currency: (b.ledger_balance.monetary.value, b.available_balance.monetary.value)
        for b in summary.balances
    }


@pytest.fixture
def book() -> Book:
    return Book()


__all__ = [
    "CUSTOMER",
    "EXAMPLES_DIR",
    "FIXTURES_DIR",
    "HANDLED_TYPES",
    "MAXIMUM",
    "MINIMUMS",
    "OTHER_CUSTOMER",
    "T0",
    "TRANSACTION_TYPES",
    "WEEK",
    "Book",
    "ErrorCode",
    "Outcome",
    "command",
    "credit_note",
    "event",
    "expected_txn_id",
    "invoice",
    "legs",
    "load_json",
    "raw_event",
    "session",
    "summary_values",
    "to_bytes",
]
