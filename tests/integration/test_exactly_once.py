"""`exactly_once` on a broker without transactions stops the worker with a clear message."""

from pathlib import Path

from worker.brokers.tansu import TansuBroker
from worker.harness.worker_process import Names, WorkerProcess


def test_exactly_once_on_tansu_says_why_it_cannot_start(tmp_path: Path) -> None:
    with TansuBroker(log_dir=tmp_path / "tansu") as broker:
        settings = {**Names("eos").settings(), "PROCESSING_GUARANTEE": "exactly_once"}
        proc = WorkerProcess(broker.bootstrap, tmp_path / "worker", settings).start()
        assert proc.proc is not None
        code = proc.proc.wait(timeout=120)
    log = proc.log_path.read_text(errors="replace")
    assert code != 0
    assert "BALANCE_PROCESSING_GUARANTEE=exactly_once needs a broker with transactions" in log
    assert "UnknownError" not in log.split("needs a broker with transactions")[0].splitlines()[-1]
