"""A smoke test of `balance-worker bench` on the embedded broker, pinned: it runs and reports every field.

No timing is asserted: figures on a shared machine are for the notes, not for tests.
"""

import json
import subprocess
import sys

import pytest

FIELDS = {
    "events",
    "worker_events_per_s",
    "baseline_events_per_s",
    "ratio",
    "p50_ms",
    "p99_ms",
    "baseline_p50_ms",
    "baseline_p99_ms",
    "latency_offered_events_per_s",
    "latency_samples",
    "latency_quiet_wait_s",
    "peak_rss_mb",
    "broker",
    "broker_data",
    "workers",
    "partitions",
    "skip_repartition",
    "cpu_ms_per_event",
    "customers",
    "state_bytes_per_customer",
    "warm_up_s",
    "broker_jit_cpu_s",
    "pinned",
}


def test_bench_reports_every_figure_on_tansu() -> None:
    argv = ["bench", "--broker", "tansu", "--events", "3000", "--customers", "300", "--latency-seconds", "1"]
    argv += ["--skip-repartition", "--pin"]
    done = subprocess.run(
        [sys.executable, "-c", "from worker.cli import main; main()", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(report) == FIELDS
    assert report["events"] == 3000 and report["broker"] == "tansu" and report["broker_data"] == "memory"
    assert report["worker_events_per_s"] > 0 and report["baseline_events_per_s"] > 0
    assert report["workers"] == 1 and report["customers"] == 300 and report["skip_repartition"] is True
    assert report["cpu_ms_per_event"] > 0 and report["state_bytes_per_customer"] > 0
    assert report["ratio"] == pytest.approx(report["worker_events_per_s"] / report["baseline_events_per_s"], rel=0.02)
    assert report["latency_samples"] > 0 and 0 < report["p50_ms"] <= report["p99_ms"]
    assert 0 < report["baseline_p50_ms"] <= report["baseline_p99_ms"]
    assert report["peak_rss_mb"] > 0
    assert 1.0 <= report["latency_quiet_wait_s"] <= 31.0
    assert report["warm_up_s"] > 0 and report["broker_jit_cpu_s"] == 0.0
    assert report["pinned"] is True
