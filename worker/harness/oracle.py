"""An independent model of the contract: the pure core fed the same input, and a checker.

Inputs are (source, key, value) in production order; one customer's messages
share a key, and so a partition, so this order is the order the worker sees.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from worker.core.decode import decode
from worker.core.errors import LedgerError
from worker.core.ledger import DEFAULT_DEDUPE_RETENTION_S, Outcome, apply, customer_of, is_handled
from worker.core.state import CustomerState

Source = tuple[str, int, int]
"""(topic, partition, offset) of an input message."""


@dataclass
class Expected:
    """What the contract says the outputs must be."""

    transactions: dict[str, dict[str, Any]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)
    dead_letters: dict[Source, str] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)
    summary_count: int = 0

    @property
    def skipped(self) -> int:
        """Inputs skipped as duplicates or unhandled types."""
        return self.outcomes[Outcome.SKIPPED_DUPLICATE] + self.outcomes[Outcome.SKIPPED_UNHANDLED]


def expect(
    inputs: Sequence[tuple[Source, bytes | None, bytes | None]],
    object_retention_s: int = 0,
    dedupe_retention_s: int = DEFAULT_DEDUPE_RETENTION_S,
) -> Expected:
    """Run the inputs through the pure core, one state per customer (with the worker's retention settings)."""
    states: dict[str, CustomerState] = {}
    out = Expected()
    for source, _key, value in inputs:
        try:
            envelope = decode(value)
            if not is_handled(envelope.type):
                out.outcomes[Outcome.SKIPPED_UNHANDLED] += 1
                continue
            customer = customer_of(envelope)
            state = states.get(customer) if customer else None
            result = apply(
                state, envelope, dedupe_retention_s=dedupe_retention_s, object_retention_s=object_retention_s
            )
        except LedgerError as exc:
            out.dead_letters[source] = exc.code
            out.outcomes["dlq"] += 1
            continue
        out.outcomes[result.outcome] += 1
        if customer is not None and result.state is not None:
            states[customer] = result.state
        for txn in result.records:
            out.transactions[txn["id"]] = txn
            out.order.append(txn["id"])
        if result.summary_record is not None and customer is not None:
            out.summaries[customer] = result.summary_record
            out.summary_count += 1
    return out


@dataclass
class Report:
    """How the observed outputs differ from the expected ones."""

    missing: list[str]
    unexpected: list[str]
    wrong: list[str]
    conflicting: list[str]
    redelivered: int
    summaries_wrong: list[str]
    dlq_missing: list[Source]
    dlq_wrong: list[Source]
    dlq_unexpected: list[Source]
    dlq_redelivered: int

    @property
    def ok(self) -> bool:
        """No loss, nothing wrong, nothing extra; identical redeliveries are allowed."""
        return not (
            self.missing
            or self.unexpected
            or self.wrong
            or self.conflicting
            or self.summaries_wrong
            or self.dlq_missing
            or self.dlq_wrong
            or self.dlq_unexpected
        )


def check(
    expected: Expected,
    transactions: list[dict[str, Any]],
    summaries: list[tuple[str, dict[str, Any]]],
    dead_letters: list[dict[str, Any]],
) -> Report:
    """Compare observed outputs with the expectation."""
    seen: dict[str, dict[str, Any]] = {}
    conflicting, redelivered = [], 0
    for txn in transactions:
        prior = seen.get(txn["id"])
        if prior is None:
            seen[txn["id"]] = txn
        elif prior == txn:
            redelivered += 1
        else:
            conflicting.append(txn["id"])
    last_summary: dict[str, dict[str, Any]] = {}
    for customer, summary in summaries:
        last_summary[customer] = summary
    dlq: dict[Source, str] = {}
    dlq_redelivered = 0
    for letter in dead_letters:
        src = letter["source"]
        key = (src["topic"], src["partition"], src["offset"])
        if key in dlq:
            dlq_redelivered += 1
        dlq[key] = letter["error"]["code"]
    return Report(
        missing=[i for i in expected.transactions if i not in seen],
        unexpected=[i for i in seen if i not in expected.transactions],
        wrong=[i for i, t in seen.items() if i in expected.transactions and expected.transactions[i] != t],
        conflicting=conflicting,
        redelivered=redelivered,
        summaries_wrong=[c for c, s in expected.summaries.items() if last_summary.get(c) != s],
        dlq_missing=[s for s in expected.dead_letters if s not in dlq],
        dlq_wrong=[s for s, code in expected.dead_letters.items() if s in dlq and dlq[s] != code],
        dlq_unexpected=[s for s in dlq if s not in expected.dead_letters],
        dlq_redelivered=dlq_redelivered,
    )
