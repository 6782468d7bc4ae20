"""The exactly_once sink's split of a batch: by owned partition, and nothing for partitions it does not own."""

from types import SimpleNamespace
from typing import Any

from faust.types import TP

from worker.app import create_app
from worker.settings import Settings
from worker.streams.sinks import AckedSink, TransactionalSink


def event(tp: TP, offset: int) -> Any:
    return SimpleNamespace(message=SimpleNamespace(tp=tp, offset=offset))


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
    assert [[e.message.offset for e in g] for g in sink.groups(events)] == [[1, 2], [7]]


def test_events_of_partitions_not_owned_are_left_to_their_owner() -> None:
    sink = ledger_sink()
    (topic,) = sink.committed_topics
    sink.owners = {TP(topic, 0): "ledger-0"}
    assert sink.groups([event(TP(topic, 3), 5)]) == []


def test_each_agent_has_its_own_topics_and_at_least_once_keeps_whole_batches() -> None:
    app = create_app(Settings(kafka_bootstrap_servers="127.0.0.1:1", processing_guarantee="exactly_once"))
    ingest, ledger = app.sinks
    assert isinstance(ingest, TransactionalSink) and isinstance(ledger, TransactionalSink)
    assert ingest.committed_topics == set(app.ledger_topics.sources.topics)
    assert ledger.committed_topics == set(app.ledger_topics.by_customer.topics)
    plain = create_app(Settings(kafka_bootstrap_servers="127.0.0.1:1")).sinks[1]
    assert isinstance(plain, AckedSink)
    events = [event(TP("t", 0), 1), event(TP("t", 1), 2)]
    assert plain.groups(events) == [events]
