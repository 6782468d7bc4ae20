"""`balance-worker worker` runs the app with the collector tuned (see `GC_THRESHOLDS`), and exits with code 3
when the app stopped because another worker fenced it."""

import gc
import sys
from typing import Any

import pytest

from worker import cli
from worker.streams.sinks import FENCED_EXIT_CODE, Fenced


def run_worker(monkeypatch: pytest.MonkeyPatch, app: Any) -> None:
    """`balance-worker worker` with `app` for the app; the collector is restored after."""
    monkeypatch.setattr(sys, "argv", ["balance-worker", "worker"])
    monkeypatch.setattr("worker.app.create_app", lambda settings: app)
    monkeypatch.setenv("BALANCE_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    before = gc.get_threshold()
    try:
        cli.main()
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def test_the_worker_runs_with_the_tuned_collector_and_startup_objects_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    class App:
        def main(self) -> None:
            seen["thresholds"] = gc.get_threshold()
            seen["frozen"] = gc.get_freeze_count()

    run_worker(monkeypatch, App())
    assert seen["thresholds"] == cli.GC_THRESHOLDS
    assert seen["frozen"] > 0


def test_standby_replicas_reach_faust() -> None:
    from worker.app import create_app
    from worker.settings import Settings

    assert create_app(Settings(kafka_bootstrap_servers="127.0.0.1:1")).conf.table_standby_replicas == 0
    app = create_app(Settings(kafka_bootstrap_servers="127.0.0.1:1", standby_replicas=2))
    assert app.conf.table_standby_replicas == 2


def test_a_worker_that_stopped_because_it_was_fenced_exits_with_code_3(monkeypatch: pytest.MonkeyPatch) -> None:
    class App:
        def main(self) -> None:
            raise Fenced("app-ledger-1-0")  # mode re-raises a crash's reason once the worker has stopped

    with pytest.raises(SystemExit) as exited:
        run_worker(monkeypatch, App())
    assert exited.value.code == FENCED_EXIT_CODE == 3
