"""Flow stays suspended from a revocation until the next assignment's recovery is signalled: a recovery of the
last assignment that ends in between resumes nothing (eos-churn seeds 78 and 80)."""

import logging

import faust
import pytest
from faust.tables import TableManager
from faust.types import TP

from worker.app import create_app
from worker.settings import Settings
from worker.streams.fetch import LedgerConsumer


def app_and_consumer() -> tuple[faust.App, LedgerConsumer]:
    app = create_app(Settings(kafka_bootstrap_servers="127.0.0.1:1"))
    consumer = app.consumer
    assert isinstance(consumer, LedgerConsumer)
    return app, consumer


def test_a_held_flow_is_not_resumed_by_the_app_s_flow_control_or_the_consumer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, consumer = app_and_consumer()
    app.flow_control.suspend()
    consumer.stop_flow()
    app.flow_control.held = True
    with caplog.at_level(logging.DEBUG, logger="worker.streams.flow_control"):
        app.flow_control.resume()
    consumer.resume_flow()
    assert not app.flow_control.is_active() and not consumer.flow_active, "a stale recovery's resume"
    assert "a resume ignored" in caplog.text, "the trail shows the resume it ignored"
    app.flow_control.held = False
    app.flow_control.resume()
    consumer.resume_flow()
    assert app.flow_control.is_active() and consumer.flow_active, "the next assignment's recovery resumes"


class Claiming:
    """A sink whose claim finds out whether a stale recovery's resume, meanwhile, would resume the flow."""

    def __init__(self, app: faust.App, consumer: LedgerConsumer) -> None:
        self.app, self.consumer = app, consumer
        self.flowed: bool | None = None

    async def claim(self, assigned: set[TP]) -> None:
        self.app.flow_control.resume()
        self.consumer.resume_flow()
        self.flowed = self.app.flow_control.is_active() or self.consumer.flow_active


async def test_the_flow_is_held_from_a_revocation_through_the_claim_until_the_recovery_is_signalled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """eos-churn seed 80: the last recovery resumed the flow during the next assignment's claim."""
    app, consumer = app_and_consumer()
    calls: list[str] = []

    async def revoked(self: faust.App, revoked: set[TP]) -> None:
        self.flow_control.suspend()
        self.consumer.stop_flow()
        calls.append("revoked")

    async def assigned(self: faust.App, assigned: set[TP], generation_id: int = 0) -> None:
        calls.append(f"assigned, held={self.flow_control.held}")  # type: ignore[attr-defined]
        await self.tables.on_rebalance(assigned, set(), assigned, generation_id)

    async def signalled(self: object, *args: object) -> None:
        calls.append("recovery signalled")

    monkeypatch.setattr(faust.App, "_on_partitions_revoked", revoked)
    monkeypatch.setattr(faust.App, "_on_partitions_assigned", assigned)
    monkeypatch.setattr(TableManager, "on_rebalance", signalled)
    sink = Claiming(app, consumer)
    app.sinks = (sink,)  # type: ignore[attr-defined]
    await app._on_partitions_revoked(set())
    app.consumer_generation_id = 2
    await app._on_partitions_assigned(set(), 2)
    assert sink.flowed is False, "a stale recovery resumed the flow during the claim"
    assert calls == ["revoked", "assigned, held=True", "recovery signalled"]
    assert not app.flow_control.held, "the recovery signalled for this generation resumes the flow"


async def test_a_recovery_signalled_for_a_stale_generation_leaves_the_flow_held(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, _ = app_and_consumer()

    async def signalled(self: object, *args: object) -> None:
        pass

    monkeypatch.setattr(TableManager, "on_rebalance", signalled)
    app.flow_control.held = True
    app.consumer_generation_id = 3
    await app.tables.on_rebalance(set(), set(), set(), 2)
    assert app.flow_control.held, "generation 3 has begun: its own recovery releases the flow"
    await app.tables.on_rebalance(set(), set(), set(), 3)
    assert not app.flow_control.held
