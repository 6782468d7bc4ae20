"""Prometheus collectors; no customer ids in labels."""

from prometheus_client import Counter

EVENTS = Counter(
    "balance_events",
    "Input messages by outcome (applied, skipped_duplicate, skipped_unhandled, dlq).",
    ["outcome", "code"],
)
TRANSACTIONS = Counter(
    "balance_transactions",
    "Customer balance transactions published, by type and currency.",
    ["type", "currency"],
)
PUBLISH_RETRIES = Counter("balance_publish_retries", "Batches whose records had to be sent again.")
