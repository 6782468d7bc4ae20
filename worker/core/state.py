"""Everything one customer's events touch, in one immutable value.

The whole value is one table entry, written once per event: its balances per
currency, what each invoice, credit note and checkout session already did,
and the event ids applied recently (spec §2).

What each object did is held in its stored form, a dict of the fields that
differ from their defaults (`compact`), and made a record only when an event
touches that object: a state is decoded and encoded whole for each batch that
touches its customer, and with a record built per object that took 193 µs for
a customer of 100 invoices and 100 event ids (36 µs without).
"""

from dataclasses import field, fields
from typing import Any

from worker.core.immutable import immutable

Stored = dict[str, Any]
"""An object's record as a state holds it: `compact` of the record."""


@immutable
class InvoiceState:
    """What one invoice did: its `applied_to_invoice` amount and later changes."""

    currency: str
    applied: int = 0
    finalized: bool = False
    voided: bool = False
    reversed: bool = False
    overpaid: bool = False


@immutable
class CreditNoteState:
    """What one credit note credited, and whether that was reversed."""

    currency: str
    invoice: str
    credited: int = 0
    reversed: bool = False


@immutable
class SessionState:
    """The balance one checkout session holds, and whether it was released."""

    currency: str
    held: int = 0
    released: bool = False


@immutable
class CustomerState:
    """One customer's ledgers and per-object memory.

    `balances` has an entry per currency the customer has a ledger in; a
    ledger exists once it has a transaction. `livemode` is pinned by the
    customer's first applied event (None until then). `invoices`, `credit_notes`
    and `sessions` hold each object's record in its stored form (read them with
    `invoice`, `credit_note` and `session`). `seen` maps applied event ids to
    their `created`. `touched` maps `kind:id` of each invoice, credit note and
    session to the `created` of its newest applied event; it is kept only when
    per-object memory has a retention (`apply(..., object_retention_s=N)`).
    `posted` counts the transactions posted to the customer, in every currency:
    the next one is numbered `posted` in the customer's history.
    """

    livemode: bool | None = None
    balances: dict[str, int] = field(default_factory=dict)
    invoices: dict[str, Stored] = field(default_factory=dict)
    credit_notes: dict[str, Stored] = field(default_factory=dict)
    sessions: dict[str, Stored] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)
    touched: dict[str, int] = field(default_factory=dict)
    posted: int = 0

    def invoice(self, invoice_id: str) -> InvoiceState | None:
        """What the invoice did, if anything."""
        stored = self.invoices.get(invoice_id)
        return None if stored is None else InvoiceState(**stored)

    def credit_note(self, note_id: str) -> CreditNoteState | None:
        """What the credit note did, if anything."""
        stored = self.credit_notes.get(note_id)
        return None if stored is None else CreditNoteState(**stored)

    def session(self, session_id: str) -> SessionState | None:
        """What the checkout session did, if anything."""
        stored = self.sessions.get(session_id)
        return None if stored is None else SessionState(**stored)

    def with_invoice(self, invoice_id: str, record: InvoiceState) -> "CustomerState":
        """The state with the invoice's record replaced."""
        return self.with_objects(invoices={**self.invoices, invoice_id: compact(record)})

    def with_credit_note(self, note_id: str, record: CreditNoteState) -> "CustomerState":
        """The state with the credit note's record replaced."""
        return self.with_objects(credit_notes={**self.credit_notes, note_id: compact(record)})

    def with_session(self, session_id: str, record: SessionState) -> "CustomerState":
        """The state with the session's record replaced."""
        return self.with_objects(sessions={**self.sessions, session_id: compact(record)})

    def with_objects(
        self,
        invoices: dict[str, Stored] | None = None,
        credit_notes: dict[str, Stored] | None = None,
        sessions: dict[str, Stored] | None = None,
        touched: dict[str, int] | None = None,
    ) -> "CustomerState":
        """The state with the given per-object memory replaced.

        `dataclasses.replace` took 1.4 µs for it; this takes 0.5.
        """
        return CustomerState(
            livemode=self.livemode,
            balances=self.balances,
            invoices=self.invoices if invoices is None else invoices,
            credit_notes=self.credit_notes if credit_notes is None else credit_notes,
            sessions=self.sessions if sessions is None else sessions,
            seen=self.seen,
            touched=self.touched if touched is None else touched,
            posted=self.posted,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form; defaults are left out to keep entries small."""
        return {
            "livemode": self.livemode,
            "balances": self.balances,
            "invoices": self.invoices,
            "credit_notes": self.credit_notes,
            "sessions": self.sessions,
            "seen": self.seen,
            "posted": self.posted,
            **({"touched": self.touched} if self.touched else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CustomerState":
        """The inverse of `to_dict`."""
        return cls(
            livemode=data["livemode"],
            balances=dict(data["balances"]),
            invoices=data["invoices"],
            credit_notes=data["credit_notes"],
            sessions=data["sessions"],
            seen=dict(data["seen"]),
            touched=dict(data.get("touched", {})),
            posted=data.get("posted", 0),  # a state written before the count starts it at 0
        )


def compact(obj: InvoiceState | CreditNoteState | SessionState) -> Stored:
    """The fields of a record that differ from their defaults (and the required ones)."""
    return {name: value for name, default in _DEFAULTS[type(obj)] if (value := getattr(obj, name)) != default}


_DEFAULTS = {
    cls: tuple((f.name, f.default) for f in fields(cls)) for cls in (InvoiceState, CreditNoteState, SessionState)
}
"""Each record's fields with their defaults (`MISSING` for the required ones, which differs from any value)."""
