"""Reads the three output topics in the background and answers: is everything there yet?"""

import asyncio
import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from worker.harness.worker_process import Names


@dataclass
class Output:
    """Everything read so far, in arrival order per topic."""

    transactions: list[dict[str, Any]] = field(default_factory=list)
    summaries: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)


class Collector:
    """A background consumer of a test's output topics (read_committed)."""

    def __init__(self, bootstrap: str, names: Names) -> None:
        self.names = names
        self.output = Output()
        # A pattern, not names: subscribing by name could auto-create the topics before the
        # worker declares them (and the summaries topic must be created compacted).
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            isolation_level="read_committed",
            metadata_max_age_ms=500,
        )
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def start(self) -> "Collector":
        await self._consumer.start()
        names = (self.names.topic(k) for k in ("transactions", "summaries", "dlq"))
        self._consumer.subscribe(pattern="^(" + "|".join(re.escape(n) for n in names) + ")$")
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()

    async def _run(self) -> None:
        topics = (self.names.topic("transactions"), self.names.topic("summaries"), self.names.topic("dlq"))
        while True:
            batches = await self._consumer.getmany(timeout_ms=200)
            for tp, records in batches.items():
                for record in records:
                    value = orjson.loads(record.value)
                    if tp.topic == topics[0]:
                        self.output.transactions.append(value)
                    elif tp.topic == topics[1]:
                        self.output.summaries.append((record.key.decode(), value))
                    else:
                        self.output.dead_letters.append(value)
            if batches:
                self._changed.set()

    async def wait_until(self, done: Callable[[Output], bool], timeout: float, what: str = "outputs") -> Output:
        """Wait, on arrivals rather than sleeps, until `done(output)` holds."""
        deadline = time.monotonic() + timeout
        while not done(self.output):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {what}: have {len(self.output.transactions)} "
                    f"transactions, {len(self.output.summaries)} summaries, {len(self.output.dead_letters)} DLQ"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=min(remaining, 1.0))
        return self.output
