"""Prometheus collectors; no customer ids in labels."""

from bisect import bisect_left
from collections import Counter as Counts
from typing import TypeVar, cast

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

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
PROCESSING_SECONDS = Histogram(
    "balance_processing_seconds",
    "Time from a message's arrival at the worker until it is fully handled and acked, by topic.",
    ["topic"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
CONSUMER_LAG = Gauge(
    "balance_consumer_lag",
    "Messages in a consumed partition not yet handled (high watermark − next offset to handle).",
    ["topic", "partition"],
)
REBALANCES = Counter("balance_rebalances", "Consumer group rebalances this worker took part in.")
STATE_ENTRIES = Gauge(
    "balance_state_entries", "Entries held in a table on this worker (actives and standbys).", ["table"]
)
STATE_BYTES = Gauge("balance_state_bytes", "Bytes of the values held in a table on this worker.", ["table"])
API_REQUESTS = Counter(
    "balance_api_requests", "HTTP API requests answered here, by endpoint and status.", ["endpoint", "status"]
)


Metric = TypeVar("Metric", bound=MetricWrapperBase)

_children: dict[tuple[MetricWrapperBase, tuple[str, ...]], MetricWrapperBase] = {}


def labelled(metric: Metric, *values: str) -> Metric:
    """The metric's child for these label values, found once: `labels()` takes a lock on every call.

    Only for metrics whose children are never removed (counters and histograms here).
    """
    child = _children.get((metric, values))
    if child is None:
        child = _children[(metric, values)] = metric.labels(*values)
    return cast(Metric, child)


class Tally:
    """Counts for labelled counters, added up here and added to the counters at once by `flush`.

    A counter's `inc` takes a lock: counting each event and transaction on its own took 2–3% of the worker's time.
    """

    def __init__(self) -> None:
        self.counts: Counts[tuple[Counter, tuple[str, ...]]] = Counts()

    def add(self, metric: Counter, *values: str) -> None:
        """Count one for the metric's child of these label values."""
        self.counts[(metric, values)] += 1

    def flush(self) -> None:
        """Add the counts to the counters, and start again from none."""
        for (metric, values), count in self.counts.items():
            labelled(metric, *values).inc(count)
        self.counts.clear()


def observe(histogram: Histogram, value: float, times: int) -> None:
    """Observe `value` `times` times over, as that many `observe` calls would, in one step.

    prometheus_client has no call for it, so this adds to the histogram's sum and bucket as `observe` does.
    """
    histogram._sum.inc(value * times)
    histogram._buckets[bisect_left(histogram._upper_bounds, value)].inc(times)
