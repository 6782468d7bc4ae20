"""The metrics helpers: `labelled` finds a child once, `Tally` counts in bulk, and `observe` observes a value
many times over, each as prometheus-client's own calls would."""

from typing import Any

import faust
from faust.types import TP
from prometheus_client import CollectorRegistry, Counter, Histogram

from worker.metrics import PROCESSING_SECONDS, STATE_BYTES, STATE_ENTRIES, Tally, labelled, observe
from worker.streams.tables import keep
from worker.web.metrics import MetricsSensor, measure_state


def test_labelled_gives_the_child_labels_gives_once_per_label_values() -> None:
    counter = Counter("t_events", "test", ["outcome"], registry=CollectorRegistry())
    labelled(counter, "applied").inc()
    labelled(counter, "applied").inc(2)
    labelled(counter, "dlq").inc()
    assert labelled(counter, "applied") is labelled(counter, "applied")
    assert counter.labels("applied")._value.get() == 3
    assert counter.labels("dlq")._value.get() == 1


def test_a_tally_adds_its_counts_to_the_counters_when_flushed_and_only_once() -> None:
    events = Counter("t_tally_events", "test", ["outcome", "code"], registry=CollectorRegistry())
    other = Counter("t_tally_other", "test", ["type"], registry=CollectorRegistry())
    tally = Tally()
    for _ in range(3):
        tally.add(events, "applied", "")
    tally.add(events, "dlq", "invalid_json")
    tally.add(other, "credit_note")
    assert events.labels("applied", "")._value.get() == 0, "nothing is counted before the flush"
    tally.flush()
    tally.flush()
    assert events.labels("applied", "")._value.get() == 3
    assert events.labels("dlq", "invalid_json")._value.get() == 1
    assert other.labels("credit_note")._value.get() == 1


def test_observing_a_value_many_times_over_is_observing_it_that_many_times() -> None:
    buckets = (0.005, 0.01, 0.5, 10.0)
    one_by_one, at_once = CollectorRegistry(), CollectorRegistry()
    single = Histogram("t_seconds", "test", buckets=buckets, registry=one_by_one)
    many = Histogram("t_seconds", "test", buckets=buckets, registry=at_once)
    for value, times in ((0.0, 2), (0.005, 3), (0.0051, 1), (0.5, 4), (3.0, 2), (10.0, 1), (11.5, 5)):
        for _ in range(times):
            single.observe(value)
        observe(many, value, times)
    assert samples(at_once) == samples(one_by_one)
    assert samples(at_once)["t_seconds_count"] == 18


def samples(registry: CollectorRegistry) -> dict[str, float]:
    """Each sample's value by its name and bucket, but the creation time."""
    return {
        sample.name + sample.labels.get("le", ""): sample.value
        for metric in registry.collect()
        for sample in metric.samples
        if not sample.name.endswith("_created")
    }


def message(tp: TP, offset: int, time_in: float | None) -> Any:
    m = faust.types.Message(tp.topic, tp.partition, offset, 0.0, 0, [], b"k", b"v", None, tp=tp)
    m.time_in = time_in
    return m


def test_the_sensor_observes_each_handled_message_once() -> None:
    topic = "t_sensor_topic"
    histogram = labelled(PROCESSING_SECONDS, topic)
    sensor = MetricsSensor([topic])
    a, b = TP(topic, 0), TP(topic, 1)
    messages = [message(a, 0, 1.0), message(a, 1, 1.0), message(b, 5, 2.0), message(b, 6, None)]
    sensor.handled(messages)
    observed = sum(bucket.get() for bucket in histogram._buckets)
    assert observed == 3, "each stamped message is observed once"
    assert sensor.handled_offsets == {a: 2, b: 7}


def test_the_state_gauges_count_each_tables_entries_and_value_bytes() -> None:
    app = faust.App("state-gauges", broker="kafka://127.0.0.1:1")
    table = app.Table("t_gauged", key_type=bytes, value_type=bytes, partitions=8)
    keep([(table, {b"a": (0, b"12345"), b"b": (1, b"678"), b"c": (2, None)})])
    measure_state([table])
    assert STATE_ENTRIES.labels("t_gauged")._value.get() == 2
    assert STATE_BYTES.labels("t_gauged")._value.get() == 8
