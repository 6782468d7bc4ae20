"""The chaos suite's CI cut, checked against the oracle: kill -9 twice and a worker joining while poison flows;
then kill -9 twice under exactly_once, which must show no duplicate; then up to three workers joining, stopping
and killed in quick succession (churn).

`balance-worker chaos` runs the full scenarios (see the README's Reliability section).
"""

from dataclasses import replace
from pathlib import Path

from worker.brokers.kafka import KafkaBroker
from worker.chaos import SHORT, run_scenario, table

CI = replace(SHORT, events=20_000, kills=2, big_payloads=1, stall_s=90.0, timeout_s=200.0)


async def test_kill_9_and_a_rebalance_under_poison_lose_nothing(kafka: KafkaBroker, tmp_path: Path) -> None:
    result = await run_scenario(kafka, tmp_path, "combined", CI, seed=3)
    print(table([result]))

    report = result.report
    assert report is not None, result.notes
    assert (result.kills, result.rebalances) == (2, 1)
    assert result.late_faults == 0 and all(result.recoveries), "every fault while the stream flowed, then output"
    assert not report.missing, f"lost transactions: {result.notes}"
    assert not (report.wrong or report.unexpected or report.summaries_wrong), report
    assert not report.conflicting, report.conflicting
    assert not (report.dlq_missing or report.dlq_wrong or report.dlq_unexpected), report
    assert result.dlq > 0 and report.ok
    assert not any(note.startswith("committed offsets behind") for note in result.notes), result.notes


async def test_exactly_once_through_kill_9_shows_no_duplicate(kafka: KafkaBroker, tmp_path: Path) -> None:
    result = await run_scenario(kafka, tmp_path, "eos-kill9", replace(CI, events=5_000, eos_kills=2), seed=5)
    print(table([result]))

    report = result.report
    assert report is not None, result.notes
    assert result.kills == 2
    assert result.late_faults == 0 and all(result.recoveries), "every fault while the stream flowed, then output"
    assert report.ok, report
    assert result.duplicates == 0, f"{report.redelivered} transactions and {report.dlq_redelivered} dead letters again"
    assert not any(note.startswith("committed offsets behind") for note in result.notes), result.notes


async def test_workers_joining_stopping_and_killed_in_quick_succession_lose_nothing(
    kafka: KafkaBroker, tmp_path: Path
) -> None:
    result = await run_scenario(kafka, tmp_path, "churn", replace(CI, events=5_000, changes=8), seed=7)
    print(table([result]))

    report = result.report
    assert report is not None, result.notes
    assert result.rebalances > 4 and all(result.recoveries), "the changes, then output after the last"
    assert report.ok, report
    assert result.stale == 0, result.notes
    assert not any(note.startswith("committed offsets behind") for note in result.notes), result.notes
