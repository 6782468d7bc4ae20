"""The commit patch: offsets follow the acks despite duplicates and gaps in Faust's bookkeeping."""

from typing import Any

import pytest
from faust.transport.consumer import Consumer as StockConsumer
from faust.types import TP

from worker.app import create_app
from worker.settings import Settings
from worker.streams.offsets import (
    AckedCommitConsumer,
    EndOffsetsConsumerThread,
    next_commit,
)

TP0 = TP("by-customer", 0)


def consumer(committed: int | None) -> Any:
    """The app's consumer (not started), with `committed` as its committed offset of TP0."""
    c = create_app(Settings(kafka_bootstrap_servers="127.0.0.1:1")).consumer
    if committed is not None:
        c._committed_offset[TP0] = committed
    return c


def ack(c: Any, *offsets: int) -> None:
    for offset in offsets:
        c._acked[TP0].append(offset)
        c._acked_index[TP0].add(offset)


def test_the_app_uses_the_patched_consumer() -> None:
    assert isinstance(consumer(None), AckedCommitConsumer)


@pytest.mark.parametrize(
    ("committed", "acked", "expected"),
    [
        (10, [10, 11, 12], 13),
        (10, [10, 10, 11, 11, 12, 12], 13),  # acked again after a seek back
        (10, [11, 13], 14),  # 10 and 12 hold transaction markers
        (None, [5, 6, 8], 9),
        (10, [], None),
        (10, [3, 4], None),  # old redeliveries below the commit
    ],
)
def test_next_commit(committed: int | None, acked: list[int], expected: int | None) -> None:
    assert next_commit(committed, acked) == expected


async def test_duplicated_acks_commit_the_whole_run_and_are_forgotten() -> None:
    c = consumer(731)
    ack(c, *range(731, 1189))
    c._acked[TP0].extend(range(731, 1189))  # what a seek back after recovery left behind
    assert c._new_offset(TP0) == 1189
    assert c._acked[TP0] == [] and not c._acked_index[TP0] and not c._gap[TP0]


async def test_a_marker_at_the_committed_offset_does_not_stop_the_commit() -> None:
    c = consumer(100)  # 100 holds the marker of the transaction that committed offset 100
    ack(c, 101, 102)
    assert c._new_offset(TP0) == 103


async def test_topics_committed_in_transactions_are_left_to_them() -> None:
    c = consumer(100)
    c.committed_elsewhere = frozenset({TP0.topic})
    ack(c, 100, 101)
    assert c._new_offset(TP0) is None and c._acked[TP0] == []


def test_exactly_once_leaves_the_consumed_topics_to_the_sinks() -> None:
    app = create_app(Settings(kafka_bootstrap_servers="127.0.0.1:1", processing_guarantee="exactly_once"))
    committed_elsewhere = app.consumer.committed_elsewhere  # type: ignore[attr-defined]
    assert committed_elsewhere == {*app.ledger_topics.sources.topics, *app.ledger_topics.by_customer.topics}
    assert create_app(Settings(kafka_bootstrap_servers="127.0.0.1:1")).consumer.committed_elsewhere == set()  # type: ignore[attr-defined]


async def test_stock_faust_advances_one_offset_per_commit_with_duplicates() -> None:
    """The behaviour being patched, measured after a kill -9: the commit crawls."""
    c = consumer(731)
    ack(c, *range(731, 1189))
    c._acked[TP0].extend(range(731, 1189))
    assert StockConsumer._new_offset(c, TP0) == 732
    c._committed_offset[TP0] = 732
    assert StockConsumer._new_offset(c, TP0) == 733


async def test_stock_faust_lags_after_a_transaction_marker() -> None:
    """The behaviour being patched: the gap Faust records for a marker holds the next message too."""
    c = consumer(100)
    ack(c, 100)
    await StockConsumer._add_gap(c, TP0, 101, 102)  # read 102 after 100; 101 is a marker
    ack(c, 102, 103, 104)
    assert StockConsumer._new_offset(c, TP0) == 103  # not 105: 102 is in the list twice


def test_end_offsets_come_from_the_broker_in_both_isolation_levels() -> None:
    """Faust's exactly-once path reads a last stable offset not yet fetched as -1 (a standby crash)."""
    assert isinstance(consumer(None)._thread, EndOffsetsConsumerThread)


@pytest.mark.parametrize("skip_repartition", [False, True])
def test_under_exactly_once_the_sinks_commit_every_consumed_topic(skip_repartition: bool) -> None:
    """Faust's transaction manager would commit in a transaction of its own, apart from the outputs."""
    settings = Settings(
        kafka_bootstrap_servers="127.0.0.1:1", processing_guarantee="exactly_once", skip_repartition=skip_repartition
    )
    app = create_app(settings)
    consumed = {name for inbox in app.inboxes for name in inbox.names}
    consumer = app.consumer
    assert isinstance(consumer, AckedCommitConsumer)
    assert consumer.committed_elsewhere == consumed
