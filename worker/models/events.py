"""Inbound shapes: the Stripe event envelope and the objects each rule reads.

Every model is strict (an amount must be a JSON integer, never a string,
float or boolean) and ignores unknown fields, so full Stripe objects parse.
"""

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, InstanceOf, model_validator

NonEmptyStr = Annotated[str, Field(min_length=1)]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Za-z]{3}$"), AfterValidator(str.lower)]
"""Three ASCII letters, normalised to lowercase; support is checked by the ledger."""


class Inbound(BaseModel):
    """Base of every inbound model: strict types, unknown fields ignored."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class ExpandedRef(Inbound):
    """An expanded Stripe object of which only the id is read."""

    id: NonEmptyStr


Ref = Annotated[NonEmptyStr | ExpandedRef, Field(union_mode="left_to_right")]
"""A Stripe reference: a string id or an expanded object with an `id`."""


def ref_id(ref: str | ExpandedRef) -> str:
    """The id a reference points at."""
    return ref if isinstance(ref, str) else ref.id


class EventData(Inbound):
    """`data` of an envelope."""

    # checked to be a JSON object, not copied (its rule validates it): 0.5 µs a small event, more for a full one
    object: InstanceOf[dict]  # type: ignore[type-arg]


class Envelope(Inbound):
    """A Stripe event envelope; `data.object` is validated later, per rule."""

    id: NonEmptyStr
    type: str
    created: Annotated[int, Field(ge=0)]
    livemode: bool
    data: EventData

    @property
    def object(self) -> dict[str, Any]:
        """The payload object."""
        return self.data.object


class InvoiceObject(Inbound):
    """What every invoice rule reads."""

    id: NonEmptyStr
    customer: Ref
    currency: CurrencyCode


class FinalizedInvoice(InvoiceObject):
    """`invoice.finalized` also reads the total."""

    total: int


class PaidInvoice(InvoiceObject):
    """`invoice.paid` / `invoice.overpaid`: the overpayment, stated or derived."""

    amount_overpaid: int | None = None
    amount_paid: int | None = None
    amount_due: int | None = None

    @model_validator(mode="after")
    def _derivable(self) -> "PaidInvoice":
        if self.amount_overpaid is None and (self.amount_paid is None or self.amount_due is None):
            raise ValueError("amount_paid and amount_due are required without amount_overpaid")
        return self

    @property
    def overpaid(self) -> int:
        """`amount_overpaid` when present, else max(0, amount_paid − amount_due)."""
        if self.amount_overpaid is not None:
            return self.amount_overpaid
        assert self.amount_paid is not None and self.amount_due is not None
        return max(0, self.amount_paid - self.amount_due)


class CreditNoteObject(Inbound):
    """What the credit-note rules read; a missing or null credit amount is 0."""

    id: NonEmptyStr
    customer: Ref
    currency: CurrencyCode
    invoice: Ref
    credit_amount: int | None = None


class CheckoutSessionObject(Inbound):
    """What the checkout rules read; customer and currency may be null."""

    id: NonEmptyStr
    customer: Ref | None = None
    mode: str | None = None
    currency: str | None = None
    amount_total: int | None = None


class BalanceCommand(Inbound):
    """A `customer_balance.*` command: a manual movement of one ledger."""

    customer: Ref
    amount: int
    currency: CurrencyCode
    description: Annotated[str, Field(max_length=350)] | None = None
    metadata: (
        Annotated[
            dict[Annotated[str, Field(max_length=40)], Annotated[str, Field(max_length=500)]],
            Field(max_length=50),
        ]
        | None
    ) = None


HandledType = Literal[
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
]

OBJECT_MODEL: dict[str, type[Inbound]] = {
    "invoice.finalized": FinalizedInvoice,
    "invoice.voided": InvoiceObject,
    "invoice.marked_uncollectible": InvoiceObject,
    "invoice.paid": PaidInvoice,
    "invoice.overpaid": PaidInvoice,
    "credit_note.created": CreditNoteObject,
    "credit_note.voided": CreditNoteObject,
    "checkout.session.created": CheckoutSessionObject,
    "checkout.session.completed": CheckoutSessionObject,
    "checkout.session.expired": CheckoutSessionObject,
    "checkout.session.async_payment_failed": CheckoutSessionObject,
    "customer_balance.adjustment": BalanceCommand,
    "customer_balance.initial": BalanceCommand,
    "customer_balance.migration": BalanceCommand,
    "customer_balance.unspent_receiver_credit": BalanceCommand,
}
"""The object model each handled event type is validated against."""
