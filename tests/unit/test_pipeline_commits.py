"""A reader handles the next batches while a commit is in flight; they then commit together, in order."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import faust
import pytest
from faust.types import TP

from tests.unit.readers import Inbox, until
from worker.settings import Settings
from worker.streams.history import History
from worker.streams.pipeline import WAITING_BATCHES, Pipeline
from worker.streams.sinks import Batch, Events, SinkStopped
from worker.streams.tables import CustomerTable
from worker.streams.topics import build_topics


class Sink:
    """Commits wait for the test to release them (by their first offset); parts are keyed by partition."""

    committed_topics: frozenset[str] = frozenset()

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.release: dict[int, asyncio.Event] = {}
        self.fail: set[int] = set()
        self.stopped: set[int] = set()

    def groups(self, events: Events) -> dict[str, Events]:
        parts: dict[str, list[Any]] = {}
        for e in events:
            parts.setdefault(str(e.partition), []).append(e)
        return parts

    async def commit(self, events: Events, batch: Batch) -> None:
        first = events[0].offset
        self.log.append(f"commit {[e.offset for e in events]}")
        await self.gate(first).wait()
        if first in self.fail:
            raise RuntimeError("a bug")
        if first in self.stopped:
            raise SinkStopped("ledger-0")
        self.log.append(f"committed {first}")

    def gate(self, first: int) -> asyncio.Event:
        return self.release.setdefault(first, asyncio.Event())


def at(*offsets: int, partition: int = 0) -> list[Any]:
    return [message(o, partition) for o in offsets]


def message(offset: int, partition: int = 0) -> Any:
    return faust.types.Message("t", partition, offset, 0.0, 0, [], b"k", b"v", None, tp=TP("t", partition))


@contextlib.asynccontextmanager
async def running(batch_max: int = 1000) -> AsyncIterator[tuple[list[str], Sink, Inbox, Pipeline]]:
    """A reader of a test inbox into a test sink, running while the body does: (log, sink, inbox, pipeline)."""
    log: list[str] = []
    sink = Sink(log)
    app = faust.App("pipeline-test", broker="kafka://127.0.0.1:1")
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:1", batch_max=batch_max)
    table = CustomerTable(app, 8)
    history = History(app, 8, 10, table)
    p = Pipeline(app, settings, build_topics(app, settings), table, history, sink, sink)  # type: ignore[arg-type]

    def handle(message: Any, batch: Batch) -> None:
        log.append(f"handle {message.offset}")

    inbox = Inbox()
    reader = asyncio.create_task(p._run(inbox, sink, handle))  # type: ignore[arg-type]
    try:
        yield log, sink, inbox, p
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_batches_handled_during_a_commit_commit_together_after_it() -> None:
    async with running() as (log, sink, inbox, _):
        inbox.put(at(0))
        await until(lambda: "commit [0]" in log)
        inbox.put(at(1))
        inbox.put(at(2, 3))
        await until(lambda: "handle 3" in log)
        await settle()
        assert [line for line in log if line.startswith("commit [")] == ["commit [0]"], "one commit at a time"
        assert inbox.acked == []
        sink.gate(1).set()
        sink.gate(0).set()
        await until(lambda: len(inbox.acked) == 3)
        assert [line for line in log if line.startswith("commit [")] == ["commit [0]", "commit [1, 2, 3]"]
        assert inbox.acked == [[0], [1], [2, 3]], "each batch acked, in order, once the commit holding it is done"


async def test_the_parts_of_one_commit_commit_concurrently() -> None:
    async with running() as (log, sink, inbox, _):
        inbox.put([message(0, partition=0), message(10, partition=1)])
        sink.gate(10).set()
        await until(lambda: "committed 10" in log)
        assert "committed 0" not in log and inbox.acked == [], "acked once every part is durable"
        sink.gate(0).set()
        await until(lambda: inbox.acked == [[0, 10]])


async def test_the_reader_waits_when_too_many_messages_wait_to_commit() -> None:
    async with running(batch_max=1) as (log, sink, inbox, _):
        inbox.put(at(0))
        await until(lambda: "commit [0]" in log)
        for offset in range(1, WAITING_BATCHES + 2):
            inbox.put(at(offset))
        await until(lambda: f"handle {WAITING_BATCHES}" in log)
        await settle()
        assert f"handle {WAITING_BATCHES + 1}" not in log
        sink.gate(0).set()
        await until(lambda: f"handle {WAITING_BATCHES + 1}" in log)


def crashes(p: Pipeline, monkeypatch: pytest.MonkeyPatch) -> list[BaseException]:
    """The reasons the pipeline crashes its app with, recorded instead."""
    crashed: list[BaseException] = []

    async def crash(exc: BaseException) -> None:
        crashed.append(exc)

    monkeypatch.setattr(p.app, "crash", crash)
    return crashed


async def test_a_commit_that_fails_crashes_the_worker_and_nothing_after_it_is_acked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with running() as (log, sink, inbox, p):
        crashed = crashes(p, monkeypatch)
        sink.fail.add(0)
        inbox.put(at(0))
        await until(lambda: "commit [0]" in log)
        inbox.put(at(1))
        await until(lambda: "handle 1" in log)
        sink.gate(0).set()
        sink.gate(1).set()
        await until(lambda: len(crashed) == 1)
        await settle()
        assert isinstance(crashed[0], RuntimeError)
        assert inbox.acked == [] and "commit [1]" not in log


async def test_a_commit_ended_by_the_sink_s_stop_crashes_nothing_and_acks_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with running() as (log, sink, inbox, p):
        crashed = crashes(p, monkeypatch)
        sink.stopped.add(0)
        inbox.put(at(0))
        await until(lambda: "commit [0]" in log)
        sink.gate(0).set()
        await settle()
        assert crashed == [] and p.crashing is None, "the worker stops already"
        assert inbox.acked == [], "its events are left for the next owner"


def test_a_later_batch_joins_an_earlier_one_and_its_entries_win() -> None:
    app = faust.App("absorb-test", broker="kafka://127.0.0.1:1")
    table = CustomerTable(app, 8).table
    first, later = Batch(), Batch()
    first.records.append("r1")  # type: ignore[arg-type]
    later.records.append("r2")  # type: ignore[arg-type]
    first.changes = ((table, {b"a": (0, b"a1"), b"b": (1, b"b1")}),)
    later.changes = ((table, {b"a": (0, b"a2")}),)
    first.early = ((table, {b"h0": (0, b"x")}),)
    later.early = ((table, {b"h1": (0, b"y"), b"h0": (0, None)}),)
    joined = Batch()
    joined.absorb(first)
    joined.absorb(later)
    assert joined.records == ["r1", "r2"]
    assert joined.changes == ((table, {b"a": (0, b"a2"), b"b": (1, b"b1")}),)
    assert joined.early == ((table, {b"h0": (0, None), b"h1": (0, b"y")}),), "a later deletion wins too"
    assert first.changes == ((table, {b"a": (0, b"a1"), b"b": (1, b"b1")}),), "the batches are not changed"
    assert first.early == ((table, {b"h0": (0, b"x")}),)
