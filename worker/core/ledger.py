"""The ledger rules (spec §2–§4): state and event in, legs and new state out.

`apply` is a pure function. It validates the event's object in the order the
contract gives, raises `LedgerError` for anything it cannot apply, and
otherwise returns the transactions, the customer's new state and the summary
to publish. Replaying the same events from the same state yields the same
records, ids included.
"""

from collections.abc import Callable
from dataclasses import replace
from enum import StrEnum
from typing import Any, NamedTuple

from pydantic import TypeAdapter, ValidationError

from worker.core.currencies import MAXIMUM_CHARGE, MINIMUM_CHARGE, is_supported
from worker.core.errors import ErrorCode, LedgerError, describe
from worker.core.ids import transaction_id
from worker.core.immutable import immutable
from worker.core.state import CreditNoteState, CustomerState, InvoiceState, SessionState
from worker.models.events import (
    OBJECT_MODEL,
    BalanceCommand,
    CheckoutSessionObject,
    CreditNoteObject,
    CurrencyCode,
    Envelope,
    FinalizedInvoice,
    Inbound,
    InvoiceObject,
    PaidInvoice,
    ref_id,
)
from worker.models.records import (
    CreditBalanceSummary,
    CustomerBalanceTransaction,
    SummaryRecord,
    TransactionRecord,
    TransactionType,
)

_CURRENCY_CODE: TypeAdapter[str] = TypeAdapter(CurrencyCode)
"""The same currency check as the models', for the checkout field that may be null."""

DEFAULT_DEDUPE_RETENTION_S = 7 * 24 * 3600
"""How long (in event time) applied event ids are remembered."""


class Outcome(StrEnum):
    """What became of an input that was not rejected."""

    APPLIED = "applied"
    SKIPPED_DUPLICATE = "skipped_duplicate"
    SKIPPED_UNHANDLED = "skipped_unhandled"


@immutable
class Result:
    """The effects of one event.

    `records` are its transactions and `summary_record` the customer's summary when it changed, as
    JSON-ready dicts in the models' field order: the worker sends them as they are. `transactions` and
    `summary` give them as the validated models. `state` is the customer's new state, or None when nothing
    is to be written.
    """

    outcome: Outcome
    customer: str | None = None
    records: tuple[TransactionRecord, ...] = ()
    state: CustomerState | None = None
    summary_record: SummaryRecord | None = None

    @property
    def transactions(self) -> tuple[CustomerBalanceTransaction, ...]:
        """The transaction records, validated."""
        return tuple(CustomerBalanceTransaction.model_validate(record) for record in self.records)

    @property
    def summary(self) -> CreditBalanceSummary | None:
        """The summary record, validated (None when the summary did not change)."""
        return None if self.summary_record is None else CreditBalanceSummary.model_validate(self.summary_record)


class _Leg(NamedTuple):
    """One balance movement a rule asks for, before it is numbered."""

    type: TransactionType
    amount: int
    currency: str
    invoice: str | None = None
    credit_note: str | None = None
    checkout_session: str | None = None
    description: str | None = None
    metadata: dict[str, str] | None = None


def is_handled(event_type: str) -> bool:
    """Whether the ledger has a rule for this event type."""
    return event_type in OBJECT_MODEL


def customer_of(envelope: Envelope) -> str | None:
    """The customer a handled event belongs to, or None when it has none.

    Only checkout sessions may lack a customer; any other event without a valid
    one is `invalid_object`.
    """
    raw = envelope.object.get("customer")
    if raw is None and envelope.type.startswith("checkout.session."):
        return None
    if isinstance(raw, str) and raw:
        return raw
    if isinstance(raw, dict) and isinstance(raw.get("id"), str) and raw["id"]:
        return str(raw["id"])
    raise LedgerError(
        ErrorCode.INVALID_OBJECT, "data.object.customer: a customer id or an expanded customer is required"
    )


def apply(
    state: CustomerState | None,
    envelope: Envelope,
    *,
    dedupe_retention_s: int = DEFAULT_DEDUPE_RETENTION_S,
    object_retention_s: int = 0,
) -> Result:
    """Apply one event to its customer's state (None for a new customer).

    With `object_retention_s` > 0, what an invoice, credit note or session did is forgotten once the
    customer's newest event is that many seconds of event time past the object's own newest event; 0 keeps
    it forever, as the contract says.
    """
    if not is_handled(envelope.type):
        return Result(Outcome.SKIPPED_UNHANDLED)
    customer = customer_of(envelope)
    before = state or CustomerState()
    if customer is not None and envelope.id in before.seen:
        return Result(Outcome.SKIPPED_DUPLICATE, customer)
    obj = _validate(envelope)
    if customer is None:
        return Result(Outcome.APPLIED)
    if before.livemode is not None and before.livemode != envelope.livemode:
        raise LedgerError(
            ErrorCode.LIVEMODE_MISMATCH,
            f"event livemode={str(envelope.livemode).lower()} but the customer's ledgers are "
            f"livemode={str(before.livemode).lower()}",
        )
    legs, ruled = _RULES[envelope.type](before, obj)
    transactions, balances = _post(ruled.balances, customer, envelope, legs)
    after = CustomerState(
        livemode=envelope.livemode,
        balances=balances,
        invoices=ruled.invoices,
        credit_notes=ruled.credit_notes,
        sessions=ruled.sessions,
        seen=_remember(ruled.seen, envelope, dedupe_retention_s),
        touched=ruled.touched,
        posted=before.posted + len(transactions),
    )
    if object_retention_s > 0:
        after = _forget_objects(after, envelope, object_retention_s)
    summary = None
    if transactions:
        held = _held(after)
        if not before.balances or held != _held(before):
            summary = _summary(customer, held, bool(after.livemode))
    return Result(Outcome.APPLIED, customer, transactions, after, summary)


def summarise(customer: str, state: CustomerState) -> CreditBalanceSummary:
    """The customer's `billing.credit_balance_summary`, one entry per ledger."""
    return CreditBalanceSummary.model_validate(_summary(customer, _held(state), bool(state.livemode)))


def _held(state: CustomerState) -> list[tuple[str, int]]:
    """The credit held per currency, in currency order: what a summary says besides livemode."""
    return [(currency, max(0, -state.balances[currency])) for currency in sorted(state.balances)]


def _summary(customer: str, held: list[tuple[str, int]], livemode: bool) -> SummaryRecord:
    """The summary record: `CreditBalanceSummary`'s fields, in its order."""
    balances = []
    for currency, value in held:
        amount = {"monetary": {"currency": currency, "value": value}, "type": "monetary"}
        balances.append({"available_balance": amount, "ledger_balance": amount})
    return {
        "object": "billing.credit_balance_summary",
        "balances": balances,
        "customer": customer,
        "livemode": livemode,
    }


def _validate(envelope: Envelope) -> Inbound:
    """The event's object, checked in contract order up to `invalid_amount`."""
    try:
        obj = OBJECT_MODEL[envelope.type].model_validate(envelope.object)
    except ValidationError as exc:
        raise LedgerError(ErrorCode.INVALID_OBJECT, describe(exc, ("data", "object"))) from None
    currency = _currency_read(envelope.type, obj)
    if currency is not None and not is_supported(currency):
        raise LedgerError(ErrorCode.UNSUPPORTED_CURRENCY, f"data.object.currency: {currency!r} is not supported")
    _check_amount(envelope.type, obj)
    return obj


def _currency_read(event_type: str, obj: Inbound) -> str | None:
    """The currency the rule will book in, once its format is checked."""
    if isinstance(obj, CheckoutSessionObject):
        if not (_holds_balance(event_type, obj)):
            return None
        try:
            return _CURRENCY_CODE.validate_python(obj.currency)
        except ValidationError:
            raise LedgerError(ErrorCode.INVALID_OBJECT, "data.object.currency: three letters are required") from None
    currency = getattr(obj, "currency", None)
    return currency if isinstance(currency, str) else None


def _holds_balance(event_type: str, obj: CheckoutSessionObject) -> bool:
    """Whether a checkout event may hold balance: a subscription with a customer."""
    return (
        event_type in ("checkout.session.created", "checkout.session.completed")
        and obj.mode == "subscription"
        and obj.customer is not None
    )


def _check_amount(event_type: str, obj: Inbound) -> None:
    """The integer amounts a rule forbids."""
    if isinstance(obj, BalanceCommand):
        if obj.amount == 0:
            raise LedgerError(ErrorCode.INVALID_AMOUNT, "data.object.amount: must not be zero")
        if event_type == "customer_balance.unspent_receiver_credit" and obj.amount > 0:
            raise LedgerError(ErrorCode.INVALID_AMOUNT, "data.object.amount: unspent receiver credit must be negative")
    negative_credit = isinstance(obj, CreditNoteObject) and (obj.credit_amount or 0) < 0
    if event_type == "credit_note.created" and negative_credit:
        raise LedgerError(ErrorCode.INVALID_AMOUNT, "data.object.credit_amount: must not be negative")


def _post(
    balances: dict[str, int], customer: str, envelope: Envelope, legs: list[_Leg]
) -> tuple[tuple[TransactionRecord, ...], dict[str, int]]:
    """Number the legs, move the balances and build the transaction records; the balances after them.

    A record has `CustomerBalanceTransaction`'s fields in its order (built as a dict: a model per record was a
    tenth of the worker's time; the tests validate every record against the model).
    """
    if not legs:
        return (), balances
    balances = dict(balances)
    out: list[TransactionRecord] = []
    for index, leg in enumerate(legs):
        ending = balances.get(leg.currency, 0) + leg.amount
        balances[leg.currency] = ending
        out.append(
            {
                "id": transaction_id(envelope.id, index),
                "object": "customer_balance_transaction",
                "amount": leg.amount,
                "checkout_session": leg.checkout_session,
                "created": envelope.created,
                "credit_note": leg.credit_note,
                "currency": leg.currency,
                "customer": customer,
                "description": leg.description,
                "ending_balance": ending,
                "invoice": leg.invoice,
                "livemode": envelope.livemode,
                "metadata": leg.metadata or {},
                "type": leg.type,
            }
        )
    return tuple(out), balances


def _remember(seen: dict[str, int], envelope: Envelope, retention_s: int) -> dict[str, int]:
    """The applied event ids with this event's added and those past retention forgotten."""
    kept = {**seen, envelope.id: envelope.created}
    horizon = max(kept.values()) - retention_s
    if min(kept.values()) >= horizon:
        return kept
    return {k: t for k, t in kept.items() if t >= horizon}


_OBJECT_KINDS = {"invoice": "invoices", "credit_note": "credit_notes", "checkout": "sessions"}
"""Event type prefix → the `CustomerState` field holding that kind of object."""


def _forget_objects(state: CustomerState, envelope: Envelope, retention_s: int) -> CustomerState:
    """Note the event's object as touched now and forget the objects untouched for `retention_s`."""
    touched = dict(state.touched)
    kind = _OBJECT_KINDS.get(envelope.type.split(".", 1)[0])
    object_id = envelope.object.get("id")
    if kind is not None and isinstance(object_id, str):
        touched[f"{kind}:{object_id}"] = envelope.created
    horizon = max(state.seen.values()) - retention_s
    stale = [key for key, at in touched.items() if at < horizon]
    if not stale and touched == state.touched:
        return state
    invoices, credit_notes, sessions = dict(state.invoices), dict(state.credit_notes), dict(state.sessions)
    held: dict[str, dict[str, Any]] = {"invoices": invoices, "credit_notes": credit_notes, "sessions": sessions}
    for key in stale:
        kind, object_id = key.split(":", 1)
        held[kind].pop(object_id, None)
        del touched[key]
    return state.with_objects(invoices, credit_notes, sessions, touched)


# --- the rules: (state, object) -> (legs, state) -------------------------------

Rule = Callable[[CustomerState, Any], tuple[list[_Leg], CustomerState]]


def _invoice_finalized(state: CustomerState, inv: FinalizedInvoice) -> tuple[list[_Leg], CustomerState]:
    known = state.invoice(inv.id)
    if known is not None and (known.finalized or known.voided):
        return [], state
    cur, total = inv.currency, inv.total
    balance = state.balances.get(cur, 0)
    legs: list[_Leg] = []
    applied = 0
    if total < 0:
        applied, due = total, 0
    elif balance < 0:
        applied = min(-balance, total)
        due = total - applied
    elif balance > 0:
        applied, due = -balance, total + balance
    else:
        due = total
    if applied:
        legs.append(_Leg("applied_to_invoice", applied, cur, invoice=inv.id))
    if 0 < due < MINIMUM_CHARGE[cur]:
        legs.append(_Leg("invoice_too_small", due, cur, invoice=inv.id))
    elif due > MAXIMUM_CHARGE:
        legs.append(_Leg("invoice_too_large", due, cur, invoice=inv.id))
    record = replace(known or InvoiceState(cur), currency=cur, applied=applied, finalized=True)
    return legs, state.with_invoice(inv.id, record)


def _invoice_voided(state: CustomerState, inv: InvoiceObject) -> tuple[list[_Leg], CustomerState]:
    known = state.invoice(inv.id) or InvoiceState(inv.currency)
    legs = []
    if known.applied and not known.reversed:
        legs.append(_Leg("unapplied_from_invoice", -known.applied, known.currency, invoice=inv.id))
        known = replace(known, reversed=True)
    return legs, state.with_invoice(inv.id, replace(known, voided=True))


def _invoice_uncollectible(state: CustomerState, inv: InvoiceObject) -> tuple[list[_Leg], CustomerState]:
    return [], state


def _invoice_paid(state: CustomerState, inv: PaidInvoice) -> tuple[list[_Leg], CustomerState]:
    known = state.invoice(inv.id) or InvoiceState(inv.currency)
    overpaid = inv.overpaid
    if overpaid <= 0 or known.overpaid:
        return [], state
    legs = [_Leg("invoice_overpaid", -overpaid, inv.currency, invoice=inv.id)]
    return legs, state.with_invoice(inv.id, replace(known, overpaid=True))


def _credit_note_created(state: CustomerState, note: CreditNoteObject) -> tuple[list[_Leg], CustomerState]:
    amount = note.credit_amount or 0
    known = state.credit_note(note.id)
    if amount <= 0 or (known is not None and known.credited):
        return [], state
    invoice = ref_id(note.invoice)
    legs = [_Leg("credit_note", -amount, note.currency, invoice=invoice, credit_note=note.id)]
    record = CreditNoteState(note.currency, invoice, credited=amount)
    return legs, state.with_credit_note(note.id, record)


def _credit_note_voided(state: CustomerState, note: CreditNoteObject) -> tuple[list[_Leg], CustomerState]:
    known = state.credit_note(note.id)
    if known is None or not known.credited or known.reversed:
        return [], state
    legs = [_Leg("credit_note", known.credited, known.currency, invoice=known.invoice, credit_note=note.id)]
    return legs, state.with_credit_note(note.id, replace(known, reversed=True))


def _session_hold(event_type: str) -> Rule:
    def rule(state: CustomerState, session: CheckoutSessionObject) -> tuple[list[_Leg], CustomerState]:
        if not _holds_balance(event_type, session) or session.id in state.sessions:
            return [], state
        cur = (session.currency or "").lower()
        use = min(-state.balances.get(cur, 0), session.amount_total or 0)
        if use <= 0:
            return [], state
        legs = [_Leg("checkout_session_subscription_payment", use, cur, checkout_session=session.id)]
        return legs, state.with_session(session.id, SessionState(cur, held=use))

    return rule


def _session_release(state: CustomerState, session: CheckoutSessionObject) -> tuple[list[_Leg], CustomerState]:
    known = state.session(session.id)
    if known is None or known.held <= 0 or known.released:
        return [], state
    legs = [
        _Leg("checkout_session_subscription_payment_canceled", -known.held, known.currency, checkout_session=session.id)
    ]
    return legs, state.with_session(session.id, replace(known, released=True))


def _command(kind: TransactionType) -> Rule:
    def rule(state: CustomerState, cmd: BalanceCommand) -> tuple[list[_Leg], CustomerState]:
        if kind == "initial" and cmd.currency in state.balances:
            raise LedgerError(
                ErrorCode.INITIAL_AFTER_TRANSACTIONS,
                f"the {cmd.currency} ledger already has transactions",
            )
        leg = _Leg(kind, cmd.amount, cmd.currency, description=cmd.description, metadata=cmd.metadata)
        return [leg], state

    return rule


_RULES: dict[str, Rule] = {
    "invoice.finalized": _invoice_finalized,
    "invoice.voided": _invoice_voided,
    "invoice.marked_uncollectible": _invoice_uncollectible,
    "invoice.paid": _invoice_paid,
    "invoice.overpaid": _invoice_paid,
    "credit_note.created": _credit_note_created,
    "credit_note.voided": _credit_note_voided,
    "checkout.session.created": _session_hold("checkout.session.created"),
    "checkout.session.completed": _session_hold("checkout.session.completed"),
    "checkout.session.expired": _session_release,
    "checkout.session.async_payment_failed": _session_release,
    "customer_balance.adjustment": _command("adjustment"),
    "customer_balance.initial": _command("initial"),
    "customer_balance.migration": _command("migration"),
    "customer_balance.unspent_receiver_credit": _command("unspent_receiver_credit"),
}
