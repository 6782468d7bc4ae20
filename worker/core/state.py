"""Everything one customer's events touch, in one immutable value.

The whole value is one table entry, written once per event: its balances per
currency, what each invoice, credit note and checkout session already did,
and the event ids applied recently (spec §2).
"""

from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True, slots=True)
class InvoiceState:
    """What one invoice did: its `applied_to_invoice` amount and later changes."""

    currency: str
    applied: int = 0
    finalized: bool = False
    voided: bool = False
    reversed: bool = False
    overpaid: bool = False


@dataclass(frozen=True, slots=True)
class CreditNoteState:
    """What one credit note credited, and whether that was reversed."""

    currency: str
    invoice: str
    credited: int = 0
    reversed: bool = False


@dataclass(frozen=True, slots=True)
class SessionState:
    """The balance one checkout session holds, and whether it was released."""

    currency: str
    held: int = 0
    released: bool = False


@dataclass(frozen=True, slots=True)
class CustomerState:
    """One customer's ledgers and per-object memory.

    `balances` has an entry per currency the customer has a ledger in; a
    ledger exists once it has a transaction. `livemode` is pinned by the
    customer's first applied event (None until then). `posted` counts the transactions posted to the
    customer, in every currency: the next one is numbered `posted` in the customer's history. `seen` maps
    applied event ids to
    their `created`. `touched` maps `kind:id` of each invoice, credit note and
    session to the `created` of its newest applied event; it is kept only when
    per-object memory has a retention (`apply(..., object_retention_s=N)`).
    """

    livemode: bool | None = None
    balances: dict[str, int] = field(default_factory=dict)
    invoices: dict[str, InvoiceState] = field(default_factory=dict)
    credit_notes: dict[str, CreditNoteState] = field(default_factory=dict)
    sessions: dict[str, SessionState] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)
    touched: dict[str, int] = field(default_factory=dict)
    posted: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form; defaults are left out to keep entries small."""
        return {
            "livemode": self.livemode,
            "balances": self.balances,
            "invoices": {k: _compact(v) for k, v in self.invoices.items()},
            "credit_notes": {k: _compact(v) for k, v in self.credit_notes.items()},
            "sessions": {k: _compact(v) for k, v in self.sessions.items()},
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
            invoices={k: InvoiceState(**v) for k, v in data["invoices"].items()},
            credit_notes={k: CreditNoteState(**v) for k, v in data["credit_notes"].items()},
            sessions={k: SessionState(**v) for k, v in data["sessions"].items()},
            seen=dict(data["seen"]),
            touched=dict(data.get("touched", {})),
            posted=data["posted"],
        )


def _compact(obj: InvoiceState | CreditNoteState | SessionState) -> dict[str, Any]:
    """The fields of a record that differ from their defaults (and the required ones)."""
    return {name: value for name, default in _DEFAULTS[type(obj)] if (value := getattr(obj, name)) != default}


_DEFAULTS = {
    cls: tuple((f.name, f.default) for f in fields(cls)) for cls in (InvoiceState, CreditNoteState, SessionState)
}
"""Each record's fields with their defaults (`MISSING` for the required ones, which differs from any value)."""
