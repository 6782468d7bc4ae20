"""Contracts for downstream consumers, generated from the pydantic models.

`deploy/schemas/*.schema.json`: JSON Schema of every record on every topic.
`deploy/asyncapi.json`: an AsyncAPI 3 document of the topics, their keys and
payloads (with the default topic names). `balance-worker contracts [DIR]`
writes them; a unit test fails when the committed files drift from the models.
"""

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode

from worker.models.dead_letter import DeadLetter
from worker.models.events import (
    OBJECT_MODEL,
    BalanceCommand,
    CheckoutSessionObject,
    CreditNoteObject,
    Envelope,
    FinalizedInvoice,
    InvoiceObject,
    PaidInvoice,
)
from worker.models.records import CreditBalanceSummary, CustomerBalanceTransaction
from worker.settings import Settings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"

INBOUND: dict[str, type[BaseModel]] = {
    "event_envelope": Envelope,
    "invoice": InvoiceObject,
    "invoice_finalized": FinalizedInvoice,
    "invoice_paid": PaidInvoice,
    "credit_note": CreditNoteObject,
    "checkout_session": CheckoutSessionObject,
    "balance_command": BalanceCommand,
}
"""Schemas of what producers send: the envelope, and the `data.object` each rule reads."""

OUTBOUND: dict[str, type[BaseModel]] = {
    "customer_balance_transaction": CustomerBalanceTransaction,
    "credit_balance_summary": CreditBalanceSummary,
    "dead_letter": DeadLetter,
}
"""Schemas of what the worker writes."""

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema(name: str, model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
    """The JSON Schema of one model, with `$schema` and `$id` (its file name)."""
    return {"$schema": SCHEMA_DIALECT, "$id": f"{name}.schema.json", **model.model_json_schema(mode=mode)}


def schemas() -> dict[str, dict[str, Any]]:
    """Every schema by file name."""
    out = {f"{name}.schema.json": schema(name, model, "validation") for name, model in INBOUND.items()}
    out.update({f"{name}.schema.json": schema(name, model, "serialization") for name, model in OUTBOUND.items()})
    return out


def _object_types() -> dict[str, list[str]]:
    """Event types per object schema name."""
    names = {model: name for name, model in INBOUND.items()}
    out: dict[str, list[str]] = {}
    for event_type, model in OBJECT_MODEL.items():
        out.setdefault(names[model], []).append(event_type)
    return out


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3 document, with the default topic names."""
    defaults = Settings()
    key = {"type": "string", "description": "The customer id (`cus_…`)."}
    inputs = {
        "invoiceEvents": defaults.topic_invoice_events,
        "creditNoteEvents": defaults.topic_credit_note_events,
        "checkoutEvents": defaults.topic_checkout_events,
        "balanceCommands": defaults.topic_balance_commands,
    }
    outputs = {
        "transactions": (defaults.topic_transactions, "customerBalanceTransaction"),
        "summaries": (defaults.topic_summaries, "creditBalanceSummary"),
        "deadLetters": (defaults.topic_dlq, "deadLetter"),
    }
    messages: dict[str, dict[str, Any]] = {
        "stripeEvent": {
            "name": "stripe_event",
            "title": "A Stripe event envelope",
            "summary": "Any handled type on any input topic; `data.object` by type: "
            + "; ".join(f"{name}: {', '.join(types)}" for name, types in _object_types().items()),
            "contentType": "application/json",
            "payload": {"$ref": "schemas/event_envelope.schema.json"},
        },
        **{
            message: {
                "name": name,
                "contentType": "application/json",
                "payload": {"$ref": f"schemas/{name}.schema.json"},
            }
            for message, name in (
                ("customerBalanceTransaction", "customer_balance_transaction"),
                ("creditBalanceSummary", "credit_balance_summary"),
                ("deadLetter", "dead_letter"),
            )
        },
    }
    for spec in messages.values():
        spec["bindings"] = {"kafka": {"key": key, "bindingVersion": "0.5.0"}}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for channel, topic in inputs.items():
        channels[channel] = {
            "address": topic,
            "messages": {"stripeEvent": {"$ref": "#/components/messages/stripeEvent"}},
        }
        operations[f"receive_{channel}"] = {"action": "receive", "channel": {"$ref": f"#/channels/{channel}"}}
    for channel, (topic, message) in outputs.items():
        channels[channel] = {"address": topic, "messages": {message: {"$ref": f"#/components/messages/{message}"}}}
        if channel == "summaries":
            channels[channel]["bindings"] = {
                "kafka": {"topicConfiguration": {"cleanup.policy": ["compact"]}, "bindingVersion": "0.5.0"}
            }
        operations[f"send_{channel}"] = {"action": "send", "channel": {"$ref": f"#/channels/{channel}"}}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "balance-worker",
            "version": "0.1.0",
            "description": "A streaming ledger for customer credit balances: Stripe events in, Stripe-shaped "
            "customer_balance_transaction and billing.credit_balance_summary records out. Every topic is keyed "
            "by customer id; topic names are the defaults (each is a BALANCE_TOPIC_* setting).",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def render() -> dict[str, str]:
    """Every generated file's text, by path relative to `deploy/`."""
    out = {f"schemas/{name}": _dump(body) for name, body in schemas().items()}
    out["asyncapi.json"] = _dump(asyncapi())
    return out


def _dump(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> None:
    """`balance-worker contracts [DIR]`: write the files into DIR (default: the repository's deploy/)."""
    root = Path(argv[0]) if argv else DEPLOY
    for path, text in render().items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        sys.stdout.write(f"wrote {target}\n")
