"""Realistic input streams: Stripe-shaped envelopes for the demo, tests and benchmark."""

import random
from collections.abc import Iterator
from typing import Any

import orjson

Event = dict[str, Any]


def envelope(event_id: str, event_type: str, obj: dict[str, Any], created: int, livemode: bool = False) -> Event:
    """A Stripe event envelope around one object."""
    return {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": created,
        "livemode": livemode,
        "api_version": "2025-03-31.basil",
        "data": {"object": obj},
    }


def invoice(invoice_id: str, customer: str, currency: str, total: int, **extra: Any) -> dict[str, Any]:
    """An invoice with the fields the rules read, plus a few Stripe carries."""
    return {
        "id": invoice_id,
        "object": "invoice",
        "customer": customer,
        "currency": currency,
        "total": total,
        "amount_due": total,
        "amount_paid": 0,
        "status": "open",
        "lines": {"object": "list", "data": [], "has_more": False},
        **extra,
    }


def credit_note(note_id: str, customer: str, currency: str, invoice_id: str, credit_amount: int) -> dict[str, Any]:
    """A credit note that credits the customer balance."""
    return {
        "id": note_id,
        "object": "credit_note",
        "customer": customer,
        "currency": currency,
        "invoice": invoice_id,
        "credit_amount": credit_amount,
        "total": credit_amount,
        "status": "issued",
    }


def session(session_id: str, customer: str | None, currency: str, amount_total: int, mode: str) -> dict[str, Any]:
    """A checkout session."""
    return {
        "id": session_id,
        "object": "checkout.session",
        "customer": customer,
        "currency": currency,
        "amount_total": amount_total,
        "mode": mode,
        "status": "open",
    }


def command(
    customer: str, amount: int, currency: str, description: str | None = None, **metadata: str
) -> dict[str, Any]:
    """A `customer_balance.*` command."""
    return {
        "customer": customer,
        "amount": amount,
        "currency": currency,
        "description": description,
        "metadata": metadata,
    }


def every_type(customer: str, start: int = 1_700_000_000) -> list[Event]:
    """One customer's story that produces all 12 transaction types, in order."""
    c = customer
    steps: list[tuple[str, dict[str, Any]]] = [
        ("customer_balance.initial", command(c, -5000, "usd", "Opening balance")),
        ("customer_balance.adjustment", command(c, -1000, "usd", "Goodwill credit", ticket="4711")),
        ("customer_balance.migration", command(c, -200, "eur", "Imported from the old system")),
        ("customer_balance.unspent_receiver_credit", command(c, -300, "usd")),
        ("invoice.finalized", invoice(f"in_{c}_1", c, "usd", 2000)),  # applied_to_invoice +2000
        ("invoice.voided", invoice(f"in_{c}_1", c, "usd", 2000)),  # unapplied_from_invoice −2000
        ("invoice.finalized", invoice(f"in_{c}_2", c, "gbp", 20)),  # invoice_too_small +20
        ("invoice.finalized", invoice(f"in_{c}_3", c, "gbp", 1000)),  # applied_to_invoice −20
        ("invoice.finalized", invoice(f"in_{c}_4", c, "jpy", 100_000_000)),  # invoice_too_large
        ("invoice.paid", invoice(f"in_{c}_5", c, "usd", 1000, amount_paid=1500, amount_due=1000)),  # overpaid −500
        ("credit_note.created", credit_note(f"cn_{c}_1", c, "usd", f"in_{c}_5", 700)),  # credit_note −700
        ("credit_note.voided", credit_note(f"cn_{c}_1", c, "usd", f"in_{c}_5", 700)),  # credit_note +700
        ("checkout.session.created", session(f"cs_{c}_1", c, "usd", 1200, "subscription")),  # hold +1200
        ("checkout.session.expired", session(f"cs_{c}_1", c, "usd", 1200, "subscription")),  # release −1200
        ("checkout.session.completed", session(f"cs_{c}_2", c, "usd", 900, "subscription")),  # hold +900
        ("invoice.marked_uncollectible", invoice(f"in_{c}_3", c, "gbp", 1000)),  # nothing
    ]
    return [envelope(f"evt_{c}_{i:02d}", t, obj, start + i * 60) for i, (t, obj) in enumerate(steps)]


def mixed(events: int, customers: int, seed: int = 7, start: int = 1_700_000_000) -> Iterator[tuple[bytes, bytes]]:
    """A reproducible mixed stream of (key, value) messages over many customers.

    Every family appears; about 5% are exact duplicates, 5% unhandled types and
    1% bad input (broken JSON, string amounts, unknown currencies, zero amounts).
    """
    rng = random.Random(seed)
    sent: list[tuple[bytes, bytes]] = []
    for n in range(events):
        customer = f"cus_{rng.randrange(customers):06d}"
        key = customer.encode()
        roll = rng.random()
        if roll < 0.05 and sent:
            yield rng.choice(sent)
            continue
        created = start + n
        if roll < 0.10:
            event = envelope(f"evt_m{n}", "customer.updated", {"id": customer, "object": "customer"}, created)
        elif roll < 0.11:
            yield key, _bad(rng, customer, n, created)
            continue
        else:
            event = _good(rng, customer, n, created)
        message = key, orjson.dumps(event)
        sent.append(message)
        yield message


def _good(rng: random.Random, customer: str, n: int, created: int) -> Event:
    currency = rng.choice(("usd", "usd", "usd", "eur", "gbp"))
    obj_n = rng.randrange(max(1, n // 4) + 1)
    kind = rng.random()
    if kind < 0.30:
        amount = rng.choice((-1, -1, 1)) * rng.randrange(100, 20_000)
        return envelope(f"evt_m{n}", "customer_balance.adjustment", command(customer, amount, currency), created)
    if kind < 0.55:
        inv = invoice(f"in_{customer}_{obj_n}", customer, currency, rng.randrange(-500, 30_000))
        return envelope(f"evt_m{n}", "invoice.finalized", inv, created)
    if kind < 0.62:
        inv = invoice(f"in_{customer}_{obj_n}", customer, currency, 0)
        return envelope(f"evt_m{n}", "invoice.voided", inv, created)
    if kind < 0.70:
        paid = rng.randrange(0, 5000)
        inv = invoice(f"in_{customer}_{obj_n}", customer, currency, 0, amount_paid=paid + 100, amount_due=paid)
        return envelope(f"evt_m{n}", "invoice.paid", inv, created)
    if kind < 0.80:
        note_type = rng.choice(("credit_note.created", "credit_note.created", "credit_note.voided"))
        note = credit_note(
            f"cn_{customer}_{obj_n}", customer, currency, f"in_{customer}_{obj_n}", rng.randrange(1, 5000)
        )
        return envelope(f"evt_m{n}", note_type, note, created)
    session_type = rng.choice(("checkout.session.completed", "checkout.session.created", "checkout.session.expired"))
    sess = session(f"cs_{customer}_{obj_n}", customer, currency, rng.randrange(100, 10_000), "subscription")
    return envelope(f"evt_m{n}", session_type, sess, created)


def _bad(rng: random.Random, customer: str, n: int, created: int) -> bytes:
    choice = rng.randrange(4)
    if choice == 0:
        return b'{"id": "evt_broken", "type": '
    amount: Any = {1: "500", 2: 0, 3: -500}[choice]
    currency = "xyz" if choice == 3 else "usd"
    return orjson.dumps(
        envelope(f"evt_bad{n}", "customer_balance.adjustment", command(customer, amount, currency), created)
    )
