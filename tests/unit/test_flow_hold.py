"""Flow stays suspended from a revocation until the next assignment: a recovery of the last assignment that
ends in between resumes nothing (eos-churn seed 78)."""

import faust
import pytest
from faust.types import TP

from worker.app import create_app
from worker.settings import Settings
from worker.streams.fetch import LedgerConsumer


def app_and_consumer() -> tuple[faust.App, LedgerConsumer]:
    app = create_app(Settings(kafka_bootstrap_servers="127.0.0.1:1"))
    consumer = app.consumer
    assert isinstance(consumer, LedgerConsumer)
    return app, consumer


def test_a_held_flow_is_not_resumed_by_the_app_s_flow_control_or_the_consumer() -> None:
    app, consumer = app_and_consumer()
    app.flow_control.suspend()
    consumer.stop_flow()
    app.flow_control.held = True
    app.flow_control.resume()
    consumer.resume_flow()
    assert not app.flow_control.is_active() and not consumer.flow_active, "a stale recovery's resume"
    app.flow_control.held = False
    app.flow_control.resume()
    consumer.resume_flow()
    assert app.flow_control.is_active() and consumer.flow_active, "the next assignment's recovery resumes"


async def test_a_revocation_holds_the_flow_and_the_next_assignment_releases_it(monkeypatch: pytest.MonkeyPatch) -> None:
    app, _ = app_and_consumer()
    calls: list[str] = []

    async def revoked(self: faust.App, revoked: set[TP]) -> None:
        calls.append("revoked")

    async def assigned(self: faust.App, assigned: set[TP], generation_id: int = 0) -> None:
        calls.append(f"assigned, held={self.flow_control.held}")  # type: ignore[attr-defined]

    monkeypatch.setattr(faust.App, "_on_partitions_revoked", revoked)
    monkeypatch.setattr(faust.App, "_on_partitions_assigned", assigned)
    app.sinks = ()  # type: ignore[attr-defined]
    await app._on_partitions_revoked(set())
    assert app.flow_control.held and calls == ["revoked"]
    await app._on_partitions_assigned(set(), 2)
    assert calls == ["revoked", "assigned, held=False"] and not app.flow_control.held
