"""A reader handles the next batches while earlier ones commit; commits and acks keep the batches' order."""

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import faust
import pytest
from faust.types import TP

from worker.settings import Settings
from worker.streams.history import History
from worker.streams.pipeline import COMMITS_IN_FLIGHT, Pipeline
from worker.streams.sinks import Batch, Events
from worker.streams.tables import CustomerTable
from worker.streams.topics import build_topics


class Inbox:
    def __init__(self, batches: list[list[Any]]) -> None:
        self.pending = batches
        self.acked: list[list[int]] = []

    async def batches(self, batch_max: int) -> AsyncIterator[list[Any]]:
        while self.pending:
            yield self.pending.pop(0)
        await asyncio.Event().wait()  # then nothing more arrives

    def done(self, batch: Sequence[Any]) -> None:
        self.acked.append([m.offset for m in batch])


class Sink:
    """Commits wait for the test to release them; records what happened in which order."""

    committed_topics: frozenset[str] = frozenset()

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.release: dict[int, asyncio.Event] = {}
        self.fail: set[int] = set()

    def groups(self, events: Events) -> list[Events]:
        return [events]

    async def commit(self, events: Events, batch: Batch) -> None:
        first = events[0].offset
        self.log.append(f"commit {first}")
        await self.release.setdefault(first, asyncio.Event()).wait()
        if first in self.fail:
            raise RuntimeError("a bug")
        self.log.append(f"committed {first}")


def message(offset: int) -> Any:
    return faust.types.Message("t", 0, offset, 0.0, 0, [], b"k", b"v", None, tp=TP("t", 0))


def pipeline(sink: Sink, log: list[str]) -> tuple[Pipeline, Any]:
    app = faust.App("pipeline-test", broker="kafka://127.0.0.1:1")
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:1")
    table, history = CustomerTable(app, 8), History(app, 8, 10)
    p = Pipeline(app, settings, build_topics(app, settings), table, history, sink, sink)  # type: ignore[arg-type]

    def handle(message: Any, batch: Batch) -> None:
        log.append(f"handle {message.offset}")

    return p, handle


async def until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0)


async def test_next_batches_are_handled_while_earlier_ones_commit_in_order() -> None:
    log: list[str] = []
    sink = Sink(log)
    p, handle = pipeline(sink, log)
    inbox = Inbox([[message(0)], [message(1)], [message(2)]])
    reader = asyncio.create_task(p._run(inbox, sink, handle))  # type: ignore[arg-type]
    try:
        await asyncio.wait_for(until(lambda: "handle 2" in log), 5)
        assert log == ["handle 0", "handle 1", "handle 2", "commit 0"], "one commit at a time, the first first"
        assert inbox.acked == []
        sink.release.setdefault(1, asyncio.Event()).set()  # the second may not overtake the first
        for _ in range(20):
            await asyncio.sleep(0)
        assert "commit 1" not in log and inbox.acked == []
        sink.release[0].set()
        await asyncio.wait_for(until(lambda: len(inbox.acked) == 2), 5)
        assert inbox.acked == [[0], [1]]
        sink.release.setdefault(2, asyncio.Event()).set()
        await asyncio.wait_for(until(lambda: len(inbox.acked) == 3), 5)
        assert [line for line in log if line.startswith("commit ")] == ["commit 0", "commit 1", "commit 2"]
    finally:
        reader.cancel()


async def test_the_reader_waits_when_too_many_batches_wait_to_commit() -> None:
    log: list[str] = []
    sink = Sink(log)
    p, handle = pipeline(sink, log)
    inbox = Inbox([[message(i)] for i in range(COMMITS_IN_FLIGHT + 3)])
    reader = asyncio.create_task(p._run(inbox, sink, handle))  # type: ignore[arg-type]
    try:
        await asyncio.wait_for(until(lambda: f"handle {COMMITS_IN_FLIGHT}" in log), 5)
        for _ in range(20):
            await asyncio.sleep(0)
        assert f"handle {COMMITS_IN_FLIGHT + 1}" not in log
    finally:
        reader.cancel()


async def test_a_commit_that_fails_crashes_the_worker_and_nothing_after_it_is_acked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log: list[str] = []
    sink = Sink(log)
    p, handle = pipeline(sink, log)
    crashed: list[BaseException] = []

    async def crash(exc: BaseException) -> None:
        crashed.append(exc)

    monkeypatch.setattr(p.app, "crash", crash)
    inbox = Inbox([[message(0)], [message(1)]])
    sink.fail.add(0)
    for offset in (0, 1):
        sink.release.setdefault(offset, asyncio.Event()).set()
    reader = asyncio.create_task(p._run(inbox, sink, handle))  # type: ignore[arg-type]
    try:
        await asyncio.wait_for(until(lambda: len(crashed) >= 2), 5)
        assert all(isinstance(exc, RuntimeError) for exc in crashed)
        assert inbox.acked == [] and "commit 1" not in log
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
