"""`labelled`: a metric's child found once, and the same child prometheus-client would give."""

from prometheus_client import CollectorRegistry, Counter

from worker.metrics import labelled


def test_labelled_gives_the_child_labels_gives_once_per_label_values() -> None:
    counter = Counter("t_events", "test", ["outcome"], registry=CollectorRegistry())
    labelled(counter, "applied").inc()
    labelled(counter, "applied").inc(2)
    labelled(counter, "dlq").inc()
    assert labelled(counter, "applied") is labelled(counter, "applied")
    assert counter.labels("applied")._value.get() == 3
    assert counter.labels("dlq")._value.get() == 1
