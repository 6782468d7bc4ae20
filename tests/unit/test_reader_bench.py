"""`balance-worker reader-bench` reads its whole stream and prints the reader's cost per event."""

import gc
import json

import pytest

from worker.reader_bench import main


def test_the_reader_bench_acks_every_event_and_reports_its_cost(capsys: pytest.CaptureFixture[str]) -> None:
    threshold = gc.get_threshold()
    main(["--events", "600", "--customers", "50", "--batch", "100"])
    assert gc.get_threshold() == threshold and gc.get_freeze_count() == 0, "the collector is left as it was"
    report = json.loads(capsys.readouterr().out)
    assert report["events"] == 600 and report["customers"] == 50 and report["batch"] == 100
    assert report["records"] > 600, "a transaction, a summary, a history entry and a state entry per applied event"
    assert report["cpu_us_per_event"] > 0 and report["events_per_cpu_s"] > 0
