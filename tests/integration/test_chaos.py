"""The chaos suite's CI cut: kill -9 twice and a worker joining while poison flows, checked against the oracle.

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
    assert not report.missing, f"lost transactions: {result.notes}"
    assert not (report.wrong or report.unexpected or report.summaries_wrong), report
    assert not report.conflicting, report.conflicting
    assert not (report.dlq_missing or report.dlq_wrong or report.dlq_unexpected), report
    assert result.dlq > 0 and report.ok
