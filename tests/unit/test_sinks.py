"""The exactly_once sink: its split of a batch (by owned partition, nothing it does not own, nothing twice) and
its transactional ids."""

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from worker.app import create_app
from worker.settings import Settings
from worker.streams import sinks
from worker.streams.sinks import AckedSink, Batch, SinkStopped, TransactionalSink, offset_ranges


def event(tp: TP, offset: int, generation: int = 0) -> Any:
    """An event fetched in `generation` (an app that never joined a group is in generation 0)."""
    return SimpleNamespace(tp=tp, offset=offset, generation_id=generation)


def ledger_sink() -> TransactionalSink:
    app = create_app(Settings(kafka_bootstrap_servers="127.0.0.1:1", processing_guarantee="exactly_once"))
    sink = app.sinks[1]
    assert isinstance(sink, TransactionalSink)
    return sink


def test_a_batch_is_split_by_owned_partition_in_order() -> None:
    sink = ledger_sink()
    (topic,) = sink.committed_topics
    p0, p1 = TP(topic, 0), TP(topic, 1)
    sink.owners = {p0: "ledger-0", p1: "ledger-1"}
    events = [event(p0, 1), event(p1, 7), event(p0, 2)]
    assert [[e.offset for e in g] for g in sink.groups(events).values()] == [[1, 2], [7]]


def test_events_of_partitions_not_owned_are_left_to_their_owner() -> None:
    sink = ledger_sink()
    (topic,) = sink.committed_topics
    sink.owners = {TP(topic, 0): "ledger-0"}
    assert sink.groups([event(TP(topic, 3), 5)]) == {}


def test_events_faust_delivers_again_are_taken_once() -> None:
    sink = ledger_sink()
    (topic,) = sink.committed_topics
    p0, p1 = TP(topic, 0), TP(topic, 1)
    sink.owners = {p0: "ledger-0", p1: "ledger-1"}
    sink.next_offsets = {p0: 10, p1: 0}  # the committed offsets at the claim
    first = [event(p0, 8), event(p0, 10), event(p0, 11), event(p1, 0), event(p0, 10), event(p0, 12)]
    again = [event(p0, 11), event(p0, 13), event(p1, 0), event(p1, 2)]

    taken = [[[e.offset for e in g] for g in sink.groups(batch).values()] for batch in (first, again)]

    assert taken == [[[10, 11, 12], [0]], [[13], [2]]]


def test_events_fetched_before_the_last_rebalance_are_left_to_the_flow_that_reads_them_again() -> None:
    sink = ledger_sink()
    (topic,) = sink.committed_topics
    p0 = TP(topic, 0)
    sink.owners = {p0: "ledger-0"}
    sink.next_offsets = {p0: 10}  # the committed offset, at the claim of generation 3
    sink.app.consumer_generation_id = 3
    stale = [event(p0, 14, generation=2), event(p0, 15, generation=2)]  # taken before the rebalance
    flow = [event(p0, 10, generation=3), event(p0, 11, generation=3)]  # read again from the committed offset

    taken = [[[e.offset for e in g] for g in sink.groups(batch).values()] for batch in (stale, flow)]

    assert taken == [[], [[10, 11]]], "nothing between the committed offset and a stale event is skipped"
    assert sink.next_offsets[p0] == 12


def test_skipping_the_hop_gives_the_ledger_both_the_inputs_and_the_by_customer_topic() -> None:
    settings = Settings(
        kafka_bootstrap_servers="127.0.0.1:1", processing_guarantee="exactly_once", skip_repartition=True
    )
    app = create_app(settings)
    (ledger,) = app.sinks
    assert isinstance(ledger, TransactionalSink)
    assert ledger.committed_topics == {*app.ledger_topics.sources.topics, *app.ledger_topics.by_customer.topics}
    (inbox,) = app.inboxes
    assert inbox.names == ledger.committed_topics


def test_each_agent_has_its_own_topics_and_at_least_once_keeps_whole_batches() -> None:
    app = create_app(Settings(kafka_bootstrap_servers="127.0.0.1:1", processing_guarantee="exactly_once"))
    ingest, ledger = app.sinks
    assert isinstance(ingest, TransactionalSink) and isinstance(ledger, TransactionalSink)
    assert ingest.committed_topics == set(app.ledger_topics.sources.topics)
    assert ledger.committed_topics == set(app.ledger_topics.by_customer.topics)
    plain = create_app(Settings(kafka_bootstrap_servers="127.0.0.1:1")).sinks[1]
    assert isinstance(plain, AckedSink)
    events = [event(TP("t", 0), 1), event(TP("t", 1), 2)]
    assert plain.groups(events) == {"": events}


def test_a_partition_s_transactional_id_is_the_same_whatever_faust_numbers_its_topic_group() -> None:
    sink = ledger_sink()
    (topic,) = sink.committed_topics
    sink.partition_counts = {topic: 8}
    ids = []
    for group in (0, 1):  # the first generation's number, without Faust's one-partition leader topic, and later ones
        sink.app.assignor._topic_groups = {topic: group}
        ids.append(sink.transactional_id(TP(topic, 5)))
    assert ids == [f"{sink.app.conf.id}-ledger-5-of-8"] * 2
    sink.partition_counts = {topic: 12}
    assert sink.transactional_id(TP(topic, 5)) != ids[0], "topics of another partition count are another group"


class Producer:
    """A started producer, as far as the sink is concerned."""

    def __init__(self) -> None:
        self.stopped = False

    async def stop(self) -> None:
        self.stopped = True


async def test_a_stopped_sink_starts_no_producer_and_a_commit_retrying_then_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[str | None] = []

    async def start_producer(settings: Settings, transactional_id: str | None = None) -> Producer:
        started.append(transactional_id)
        return Producer()

    monkeypatch.setattr(sinks, "start_producer", start_producer)
    sink = ledger_sink()
    (topic,) = sink.committed_topics
    p0 = TP(topic, 0)
    sink.owners = {p0: "ledger-0"}
    await sink.stop()
    with pytest.raises(SinkStopped):
        await asyncio.wait_for(sink.commit([event(p0, 4)], Batch()), 5)  # not a retry loop
    assert started == [] and sink.producers == {}


async def test_a_producer_that_started_while_the_sink_stopped_is_stopped_and_not_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    starting, proceed, made = asyncio.Event(), asyncio.Event(), Producer()

    async def start_producer(settings: Settings, transactional_id: str | None = None) -> Producer:
        starting.set()
        await proceed.wait()
        return made

    monkeypatch.setattr(sinks, "start_producer", start_producer)
    sink = ledger_sink()
    claim = asyncio.ensure_future(sink._producer("ledger-0"))
    await starting.wait()
    await sink.stop()
    proceed.set()
    with pytest.raises(SinkStopped):
        await claim
    assert made.stopped and sink.producers == {}


def test_a_transaction_s_trail_names_each_partition_s_first_and_last_offset_and_count() -> None:
    p0, p1 = TP("by-customer", 0), TP("by-customer", 1)
    events = [
        SimpleNamespace(topic=tp.topic, partition=tp.partition, offset=o) for tp, o in ((p0, 4), (p1, 9), (p0, 6))
    ]
    assert offset_ranges(events) == {"by-customer[0]": [4, 6, 2], "by-customer[1]": [9, 9, 1]}


async def test_a_partition_s_events_are_not_taken_until_its_claim_is_done(monkeypatch: pytest.MonkeyPatch) -> None:
    starting = asyncio.Event()

    async def start_producer(settings: Settings, transactional_id: str | None = None) -> Producer:
        starting.set()
        await asyncio.Event().wait()  # the broker has not answered yet
        return Producer()

    monkeypatch.setattr(sinks, "start_producer", start_producer)
    sink = ledger_sink()
    (topic,) = sink.committed_topics
    p0 = TP(topic, 0)
    sink.partition_counts = {topic: 8}
    claim = asyncio.ensure_future(sink.claim({p0}))
    try:
        await starting.wait()
        assert sink.groups([event(p0, 5)]) == {}, "no next offset yet: any offset would pass"
        assert p0 not in sink.next_offsets
    finally:
        claim.cancel()
