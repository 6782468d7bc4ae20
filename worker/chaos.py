"""Fault scenarios on a real Apache Kafka, each checked against the oracle; `balance-worker chaos` prints a table.

Every scenario gets its own app id and topics on one shared broker, produces a seeded stream, injects its
faults (kill -9, scaling, a broker restart, poison input, a long soak, exactly-once), waits on arrivals until
every output the oracle expects is there (or output stalls), and compares. Nothing is fixed: it reports.
"""

import argparse
import asyncio
import hashlib
import random
import re
import shutil
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from itertools import islice, pairwise
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from worker.brokers.kafka import KafkaBroker, fetch_libs
from worker.core.decode import decode
from worker.core.ids import transaction_id
from worker.harness.collector import Collector
from worker.harness.oracle import Expected, Report, Source, check, expect
from worker.harness.signals import exit_with, interrupts_ignored
from worker.harness.worker_process import READY, Names, WorkerProcess
from worker.sample import command, credit_note, envelope, invoice, mixed

Message = tuple[bytes | None, bytes | None]
Sent = tuple[Source, bytes | None, bytes | None]

INPUTS = ("invoice_events", "credit_note_events", "checkout_events", "balance_commands")
WORKER_SETTINGS = {"PARTITIONS": "4", "SESSION_TIMEOUT_S": "6", "HEARTBEAT_INTERVAL_S": "1", "COMMIT_INTERVAL_S": "0.5"}
TRAIL = {"DEBUG_LOGGERS": "worker.streams.sinks,worker.streams.flow_control"}
"""A lost event's trail in the workers' logs: under exactly_once each claim's and each transaction's offsets,
and under both guarantees each resume of the flow ignored while it is held."""
EOS = {"PROCESSING_GUARANTEE": "exactly_once", **TRAIL}
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
BROKER_CONFIG = {"message.max.bytes": str(MAX_MESSAGE_BYTES)}
BIG_PAYLOAD_BYTES = 5 * 1024 * 1024
LOG_PROBLEM = re.compile(r"\b(ERROR|CRITICAL|Traceback|KeyError|UnknownError)\b")


@dataclass(frozen=True)
class Profile:
    """How big each scenario is."""

    events: int
    kills: int
    poison_events: int
    big_payloads: int
    soak_events: int
    eos_kills: int
    customers: int = 2000
    changes: int = 12
    """Workers joining, leaving and killed in `churn`."""
    soak_customers: int = 2_000
    stall_s: float = 120.0
    timeout_s: float = 1800.0
    rate: float = 1000.0
    """Events per second at which a fault scenario's stream is produced: `events` of them, and more until its
    last fault, so that every fault lands while the stream flows. Produced at once, a stream of 20,000 events was
    all out in about 2 s, before a restarted or added worker was ready again, and a rebalance bug went unseen."""


SHORT = Profile(events=20_000, kills=2, poison_events=10_000, big_payloads=2, soak_events=100_000, eos_kills=2)
FULL = Profile(
    events=50_000, kills=10, poison_events=50_000, big_payloads=5, soak_events=1_000_000, eos_kills=5, changes=40
)
SOAK_RETENTION_S = 24 * 3600
"""The soak's event-id and object retention. The sample stream's event time moves one second per event, so
state stops growing once a window is full, 86,400 events in; with the 7-day default the 1M-event soak would
fill its window only 60% of the way through, and memory would grow until then by design."""


@dataclass
class Result:
    """What one scenario did and found."""

    name: str
    events: int = 0
    kills: int = 0
    rebalances: int = 0
    report: Report | None = None
    recoveries: list[float | None] = field(default_factory=list)
    peak_rss: int = 0
    seconds: float = 0.0
    expected: int = 0
    notes: list[str] = field(default_factory=list)
    reapplied: int = 0
    dlq: int = 0
    zero_duplicates: bool = False
    late_faults: int = 0
    """Faults that came once the stream had ended."""
    stale: int = 0
    """Customers whose state changelog went back (`stale_states`)."""

    @property
    def lost(self) -> int:
        """Expected transactions and dead letters that never arrived."""
        r = self.report
        return -1 if r is None else len(r.missing) + len(r.dlq_missing)

    @property
    def wrong(self) -> int:
        """Records with wrong content, last summaries wrong, dead letters with the wrong code or unexpected."""
        r = self.report
        if r is None:
            return -1
        return len(r.wrong) + len(r.unexpected) + len(r.summaries_wrong) + len(r.dlq_wrong) + len(r.dlq_unexpected)

    @property
    def duplicates(self) -> int:
        """Identical redeliveries of transactions and dead letters."""
        return 0 if self.report is None else self.report.redelivered + self.report.dlq_redelivered

    @property
    def ok(self) -> bool:
        """No loss, nothing wrong, no conflicting records, no state written back, every fault in the stream;
        with exactly-once also no duplicates."""
        if self.report is None or not self.report.ok or self.late_faults or self.stale:
            return False
        return not (self.zero_duplicates and self.duplicates)


# ---------------------------------------------------------------- measuring


def rss_bytes(pid: int) -> int | None:
    """The resident set size of a process (VmRSS), or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return None


class Tally:
    """Distinct transaction ids and dead-letter sources seen so far, updated incrementally."""

    def __init__(self, collector: Collector) -> None:
        self.output = collector.output
        self.ids: set[str] = set()
        self.dlq: set[Source] = set()
        self._t = self._d = 0

    def update(self) -> int:
        """Take in new arrivals; returns how many distinct transactions are seen."""
        transactions, letters = self.output.transactions, self.output.dead_letters
        for txn in transactions[self._t :]:
            self.ids.add(txn["id"])
        for letter in letters[self._d :]:
            src = letter["source"]
            self.dlq.add((src["topic"], src["partition"], src["offset"]))
        self._t, self._d = len(transactions), len(letters)
        return len(self.ids)


@dataclass
class Run:
    """One scenario's app, workers, producer, output collector and RSS sampler on the shared broker."""

    broker: KafkaBroker
    workdir: Path
    names: Names
    settings: dict[str, str]
    client: AIOKafkaProducer
    collector: Collector
    result: Result
    sent: list[Sent] = field(default_factory=list)
    workers: list[WorkerProcess] = field(default_factory=list)
    rss: list[tuple[float, int, int]] = field(default_factory=list)
    _sampler: asyncio.Task[None] | None = None
    _feeder: asyncio.Task[Expected] | None = None
    _faults_over: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.tally = Tally(self.collector)

    def worker(self) -> WorkerProcess:
        """A new worker of this run's app (own data dir and web port), not started."""
        proc = WorkerProcess(self.broker.bootstrap, self.workdir / f"w{len(self.workers)}", dict(self.settings))
        self.workers.append(proc)
        return proc

    def topic_of(self, key: bytes | None) -> str:
        """The input topic of a key: one customer's messages always share a topic (and so a partition)."""
        digest = hashlib.blake2b(key or b"", digest_size=2).digest()
        return self.names.topic(INPUTS[int.from_bytes(digest, "big") % len(INPUTS)])

    async def produce(self, messages: Iterable[Message], chunk: int = 5000, rate: float | None = None) -> None:
        """Send messages in batches (at most `rate` a second) and remember where each landed, in order."""
        if not self.sent:
            await self.wait_for_topics()
        pending: list[tuple[str, Message, asyncio.Future[Any]]] = []
        began = time.monotonic()
        for n, (key, value) in enumerate(messages):
            if rate is not None and n % 50 == 0 and (ahead := n / rate - (time.monotonic() - began)) > 0:
                await asyncio.sleep(ahead)
            topic = self.topic_of(key)
            pending.append((topic, (key, value), await self.client.send(topic, value=value, key=key)))
            if len(pending) >= chunk:
                await self._landed(pending)
                pending = []
        await self._landed(pending)

    async def _landed(self, pending: list[tuple[str, Message, asyncio.Future[Any]]]) -> None:
        for topic, (key, value), future in pending:
            meta = await future
            self.sent.append(((topic, meta.partition, meta.offset), key, value))
        self.result.events = len(self.sent)

    async def start_sampling(self, interval: float = 0.5) -> None:
        """Sample every live worker's RSS in the background, with the output count at that moment."""

        async def sample() -> None:
            began = time.monotonic()
            while True:
                count = self.tally.update()
                for proc in self.workers:
                    size = rss_bytes(proc.pid) if proc.alive and proc.pid else None
                    if size is not None:
                        self.rss.append((time.monotonic() - began, count, size))
                        self.result.peak_rss = max(self.result.peak_rss, size)
                await asyncio.sleep(interval)

        self._sampler = asyncio.create_task(sample())

    async def wait_progress(self, target: int, timeout: float) -> None:
        """Wait on arrivals until `target` distinct transactions are out."""

        def reached(_out: object) -> bool:
            return self.tally.update() >= target

        await self.collector.wait_until(reached, timeout, f"{target} distinct transactions")

    def marks(self) -> dict[int, int]:
        """Where each worker's log ends now, to look for a later "Worker ready"."""
        return {i: proc.log_path.stat().st_size if proc.log_path.exists() else 0 for i, proc in enumerate(self.workers)}

    def ready_since(self, marks: dict[int, int]) -> bool:
        """Whether every live worker logged "Worker ready" (end of a rebalance's recovery) after `marks`."""
        for i, proc in enumerate(self.workers):
            if proc.alive:
                with proc.log_path.open("rb") as log:
                    log.seek(marks.get(i, 0))
                    if READY not in log.read():
                        return False
        return True

    async def recovery(self, since: float, marks: dict[int, int] | None, timeout: float) -> float | None:
        """Seconds from a fault at `since` until every live worker is ready again (unless `marks` is None) and
        then a new transaction arrives; None if the stream had ended and was all out, or nothing came."""

        def ready(_out: object) -> bool:
            return marks is None or self.ready_since(marks)

        try:
            await self.collector.wait_until(ready, timeout, "every worker ready after a fault")
            before = self.tally.update()
            if not self.flowing and before >= self.result.expected:
                return None

            def moved(_out: object) -> bool:
                return self.tally.update() > before

            await self.collector.wait_until(moved, timeout, "output after a fault")
        except AssertionError:
            return None
        return round(time.monotonic() - since, 1)

    async def wait_for_topics(self, timeout: float = 120.0) -> None:
        """Wait until the worker created the input topics (producing first would auto-create them)."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.broker.bootstrap)
        await admin.start()
        try:
            want = {self.names.topic(name) for name in INPUTS}
            deadline = time.monotonic() + timeout
            while not want <= set(await admin.list_topics()):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the worker did not create its topics within {timeout}s")
                await asyncio.sleep(0.2)
        finally:
            await admin.close()

    async def feed(self, first: Sequence[Message], more: Iterator[Message], rate: float, chunk: int = 5000) -> None:
        """Produce `first` in the background at `rate` a second, then `more` until the faults are over (`fed`).

        Faults are timed by fractions of the transactions `first` makes, which do not depend on where its
        messages land: they are counted before the first is sent.
        """
        unplaced = [(("", 0, n), key, value) for n, (key, value) in enumerate(first)]
        self.result.expected = len((await asyncio.to_thread(expect, unplaced)).transactions)

        def stream() -> Iterator[Message]:
            yield from first
            for message in more:
                if self._faults_over.is_set():
                    return
                yield message

        async def produce() -> Expected:
            await self.produce(stream(), chunk, rate)
            return await asyncio.to_thread(expect, self.sent)

        self._feeder = asyncio.create_task(produce())

    @property
    def flowing(self) -> bool:
        """Whether the stream `feed` produces is still being produced."""
        return self._feeder is not None and not self._feeder.done()

    async def fed(self) -> Expected:
        """End the stream `feed` produces (the faults are over); the oracle's expectation of all of it."""
        assert self._feeder is not None, "nothing was fed"
        self._faults_over.set()
        expected = await self._feeder
        self.result.expected = len(expected.transactions)
        return expected

    async def close(self) -> None:
        """Kill every worker and stop the background tasks."""
        for task in (self._sampler, self._feeder):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        for proc in self.workers:
            proc.kill()
        await self.collector.stop()
        await self.client.stop()


# ---------------------------------------------------------------- settling and checking


async def settle(run: Run, expected: Expected, stall_s: float, timeout_s: float) -> Report:
    """Wait until every expected output arrived (or output stalls for `stall_s`), then compare."""
    want_ids, want_dlq = set(expected.transactions), set(expected.dead_letters)
    deadline = time.monotonic() + timeout_s
    while True:
        out = run.collector.output
        last = (len(out.transactions), len(out.dead_letters), len(out.summaries))
        run.tally.update()
        if want_ids <= run.tally.ids and want_dlq <= run.tally.dlq:
            report = compare(run, expected)
            if not report.summaries_wrong:
                return report
        if time.monotonic() > deadline:
            return compare(run, expected)

        def changed(_out: object, last: tuple[int, int, int] = last) -> bool:
            out = run.collector.output
            return (len(out.transactions), len(out.dead_letters), len(out.summaries)) != last

        try:
            await run.collector.wait_until(changed, stall_s, "any new output")
        except AssertionError:
            run.result.notes.append(f"output stalled for {stall_s:.0f}s before everything arrived")
            return compare(run, expected)


def compare(run: Run, expected: Expected) -> Report:
    """The oracle's comparison, leaving out ids the contract itself applies twice (see `reapplied_ids`)."""
    out = run.collector.output
    again = reapplied_ids(expected)
    run.result.reapplied = len(again)
    run.result.dlq = len(run.tally.dlq)
    if not again:
        return check(expected, out.transactions, out.summaries, out.dead_letters)
    kept = replace(expected, transactions={k: v for k, v in expected.transactions.items() if k not in again})
    report = check(kept, [t for t in out.transactions if t["id"] not in again], out.summaries, out.dead_letters)
    report.missing += [i for i in again if i not in run.tally.ids]
    return report


def reapplied_ids(expected: Expected) -> set[str]:
    """Transaction ids the oracle emits twice: an exact duplicate event sent again after its id's retention.

    The contract re-applies it (ids are remembered for `BALANCE_DEDUPE_RETENTION_S` of event time), so two
    different records with one id are right there, not a conflict.
    """
    counts = Counter(expected.order)
    return {i for i, n in counts.items() if n > 1}


def sources_of(sent: Sequence[Sent], ids: set[str]) -> dict[str, Source]:
    """The input message each transaction id comes from."""
    found: dict[str, Source] = {}
    for source, _key, value in sent:
        try:
            event_id = decode(value, MAX_MESSAGE_BYTES).id
        except Exception:
            continue
        for leg in range(4):
            tid = transaction_id(event_id, leg)
            if tid in ids and tid not in found:
                found[tid] = source
    return found


async def commit_lag(run: Run, timeout: float = 20.0) -> dict[str, int]:
    """Wait (polling) until no committed message is left after the group's committed offsets; return what is.

    Counted by reading read_committed from each committed offset, so transaction markers (offsets that hold
    no message) do not count.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=run.broker.bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=run.broker.bootstrap, isolation_level="read_committed")
    await admin.start()
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        while True:
            committed = await admin.list_consumer_group_offsets(run.names.app_id)
            ends = await consumer.end_offsets(list(committed))
            behind = {tp: meta.offset for tp, meta in committed.items() if ends[tp] > meta.offset}
            lag: Counter[str] = Counter()
            if behind:
                consumer.assign(list(behind))
                for tp, offset in behind.items():
                    consumer.seek(tp, offset)
                batches = await consumer.getmany(timeout_ms=2000)
                for tp, records in batches.items():
                    lag[f"{tp.topic}[{tp.partition}] committed {behind[tp]} end {ends[tp]}"] += len(records)
            if not lag or time.monotonic() > deadline:
                return dict(lag)
            await asyncio.sleep(1.0)
    finally:
        await consumer.stop()
        await admin.close()


def scan_logs(run: Run) -> None:
    """Note each worker's exits and the first distinct problem lines of its log."""
    for i, proc in enumerate(run.workers):
        if proc.proc is not None and proc.proc.poll() not in (None, -9, 0):
            run.result.notes.append(f"w{i} exited with code {proc.proc.returncode}")
        text = proc.log_path.read_text(errors="replace") if proc.log_path.exists() else ""
        problems = [line.strip()[:220] for line in text.splitlines() if LOG_PROBLEM.search(line)]
        if problems:
            kinds = Counter(re.sub(r"\d+", "N", p[:120]) for p in problems)
            top = "; ".join(f"{n}× {k}" for k, n in kinds.most_common(3))
            run.result.notes.append(f"w{i} log: {len(problems)} problem lines ({proc.log_path}): {top}")


async def evidence(run: Run, report: Report) -> None:
    """For lost transactions: their input messages and the group's committed offsets, as notes."""
    if report.missing:
        where = sources_of(run.sent, set(report.missing))
        by_partition = Counter(f"{t}[{p}]" for t, p, _o in where.values())
        examples = sorted(where.values())[:8]
        run.result.notes.append(f"lost transactions by input partition: {dict(by_partition)}; e.g. {examples}")
        if not run.settings.get("SKIP_REPARTITION"):
            run.result.notes.append(await hop_evidence(run, set(where.values())))
    if report.dlq_missing:
        run.result.notes.append(f"lost dead letters: {sorted(report.dlq_missing)[:8]}")
    if report.conflicting:
        run.result.notes.append(f"conflicting ids: {report.conflicting[:5]}")
    if run.result.zero_duplicates and run.result.duplicates:
        out = run.collector.output
        twice = [i for i, n in Counter(t["id"] for t in out.transactions).items() if n > 1]
        letters = Counter(tuple(d["source"][k] for k in ("topic", "partition", "offset")) for d in out.dead_letters)
        run.result.notes.append(
            f"duplicated transactions {twice[:5]} from inputs {sorted(sources_of(run.sent, set(twice)).values())[:5]}; "
            f"duplicated dead letters of inputs {[s for s, n in letters.items() if n > 1][:5]}"
        )


async def read_whole(bootstrap: str, topic: str, partitions: int) -> list[Any]:
    """Every committed record of `topic` (of `partitions`), partition by partition in offset order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed")
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        found: dict[int, list[Any]] = {tp.partition: [] for tp in parts}
        while any([await consumer.position(tp) < ends[tp] for tp in parts]):
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                found[tp.partition].extend(records)
        return [r for p in sorted(found) for r in found[p]]
    finally:
        await consumer.stop()


async def hop_evidence(run: Run, lost: set[Source]) -> str:
    """Where the lost transactions' input messages are on the by-customer topic (the hop), with the group's
    committed offset of each partition they are on: a message missing there was lost by the router."""
    values = {source: value for source, _key, value in run.sent if source in lost}
    topic = run.names.by_customer
    hops: dict[bytes | None, list[tuple[int, int]]] = {}
    for r in await read_whole(run.broker.bootstrap, topic, int(run.settings["PARTITIONS"])):
        hops.setdefault(r.value, []).append((r.partition, r.offset))
    admin = AIOKafkaAdminClient(bootstrap_servers=run.broker.bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(run.names.app_id)
    finally:
        await admin.close()
    found = []
    for source, value in sorted(values.items()):
        marks = [f"[{p}]@{o} (committed {committed.get(TopicPartition(topic, p))})" for p, o in hops.get(value, [])]
        found.append(f"{source[0].rsplit('.', 2)[-2]}[{source[1]}]@{source[2]} -> {marks or 'not forwarded'}")
    return "lost inputs on the by-customer topic: " + "; ".join(found[:12])


async def stale_states(run: Run) -> None:
    """Customers whose state changelog has a write with fewer transactions posted than one before it (see
    `went_back`): counted in the result, with a FINDING note."""
    posted: dict[bytes, list[int]] = {}
    for r in await read_whole(run.broker.bootstrap, run.names.customers_changelog, int(run.settings["PARTITIONS"])):
        if r.value is not None:
            posted.setdefault(r.key, []).append(orjson.loads(r.value).get("posted", 0))
    back, at_end = went_back(posted)
    run.result.stale = len(back)
    if back:
        went = f"{len(back)} customers' state went back in the changelog, {len(at_end)} at its end"
        run.result.notes.append(f"FINDING: {went}: {back[:5]}")


def went_back(posted: dict[bytes, list[int]]) -> tuple[list[bytes], list[bytes]]:
    """The customers whose `posted` counts, in changelog order, ever go down, and those of them whose last is
    below an earlier one.

    A state is written again the same on a replay, never with fewer transactions: a lower count is a state
    written late, by a worker that no longer owned its partition. A recovery reads the last write, so one at
    the end rolls the customer back.
    """
    back = sorted(key for key, seq in posted.items() if any(b < a for a, b in pairwise(seq)))
    return back, [key for key in back if posted[key][-1] < max(posted[key])]


# ---------------------------------------------------------------- scenarios

Scenario = Callable[[Run, Profile, random.Random], Awaitable[Expected]]


async def fault_at(run: Run, fraction: float, rng: random.Random, p: Profile) -> None:
    """Wait until `fraction` of the expected transactions are out, then a random moment more; note a fault that
    comes once the stream ended."""
    await run.wait_progress(int(run.result.expected * fraction), p.timeout_s)
    await asyncio.sleep(rng.uniform(0.0, 0.5))  # a random moment, on purpose
    if not run.flowing:
        run.result.late_faults += 1
        run.result.notes.append(f"FINDING: the fault at {fraction:.0%} came once the stream had ended")


def endless(events: int, customers: int, seed: int) -> tuple[list[Message], Iterator[Message]]:
    """A mixed stream's first `events` messages, and an endless rest of it."""
    stream = mixed(1 << 40, customers, seed)
    return list(islice(stream, events)), stream


async def kill9(run: Run, p: Profile, rng: random.Random, kills: int | None = None) -> Expected:
    """kill -9 the worker at random moments of the stream, restarting it each time."""
    proc = run.worker().start()
    await run.feed(*endless(p.events, p.customers, rng.randrange(1 << 30)), p.rate)
    for fraction in sorted(rng.uniform(0.05, 0.95) for _ in range(p.kills if kills is None else kills)):
        await fault_at(run, fraction, rng, p)
        since, marks = time.monotonic(), run.marks()
        proc.kill()
        proc.start()
        run.result.kills += 1
        run.result.recoveries.append(await run.recovery(since, marks, p.stall_s))
    return await run.fed()


async def scale(run: Run, p: Profile, rng: random.Random) -> Expected:
    """Start a 2nd and a 3rd worker, then kill -9 one and stop another gracefully (8 partitions)."""
    first = run.worker().start()
    await run.feed(*endless(p.events, p.customers, rng.randrange(1 << 30)), p.rate)
    second, third = run.worker(), run.worker()
    steps: list[tuple[float, Callable[[], Awaitable[None]]]] = [
        (0.15, _async(second.start)),
        (0.35, _async(third.start)),
        (0.55, _async(second.kill)),
        (0.75, lambda: _stop(run, first)),
    ]
    for fraction, step in steps:
        await fault_at(run, fraction, rng, p)
        since, marks = time.monotonic(), run.marks()
        await step()
        run.result.rebalances += 1
        run.result.recoveries.append(await run.recovery(since, marks, p.stall_s))
    run.result.kills = 1
    return await run.fed()


async def churn(run: Run, p: Profile, rng: random.Random) -> Expected:
    """Up to three workers join, stop gracefully and are killed -9 at random, 0.5–3 s apart, each change before
    the last one's rebalance is over (8 partitions). Then every stopped worker starts again (one is stopped
    first if none is), a change that always rebalances (a worker killed before it joined does not), and the
    recovery from it is timed."""
    pool = [run.worker() for _ in range(3)]
    pool[0].start()
    await run.feed(*endless(p.events, p.customers, rng.randrange(1 << 30)), p.rate)
    await fault_at(run, 0.05, rng, p)
    stopping: dict[int, asyncio.Task[None]] = {}  # by pool index
    for _ in range(p.changes):
        await asyncio.sleep(rng.uniform(0.5, 3.0))  # a random moment, on purpose
        stopping = {i: task for i, task in stopping.items() if not task.done()}
        live = [i for i, proc in enumerate(pool) if proc.alive and i not in stopping]
        idle = [proc for i, proc in enumerate(pool) if not proc.alive and i not in stopping]  # stops done
        actions = (["start"] if idle else []) + (["stop", "kill"] if len(live) > 1 else [])
        if not actions:  # two of three workers still stopping
            continue
        action = rng.choice(actions)
        if action == "start":
            rng.choice(idle).start()
        elif action == "stop":
            i = rng.choice(live)
            stopping[i] = asyncio.create_task(_stop(run, pool[i]))
        else:
            pool[rng.choice(live)].kill()
            run.result.kills += 1
        run.result.rebalances += 1
    await asyncio.gather(*stopping.values())
    if all(proc.alive for proc in pool):
        await _stop(run, rng.choice(pool))
    since, marks = time.monotonic(), run.marks()
    for proc in pool:
        if not proc.alive:
            proc.start()
    run.result.rebalances += 1
    run.result.recoveries.append(await run.recovery(since, marks, p.stall_s))
    return await run.fed()


def _async(action: Callable[[], object]) -> Callable[[], Awaitable[None]]:
    async def run_it() -> None:
        action()

    return run_it


async def _stop(run: Run, proc: WorkerProcess) -> None:
    """Stop a worker gracefully (off the event loop) and note an unclean exit."""
    code = await asyncio.to_thread(proc.stop)
    if code != 0:
        run.result.notes.append(f"graceful stop of {proc.workdir.name} exited with code {code}")


async def broker_restart(run: Run, p: Profile, rng: random.Random) -> Expected:
    """Stop and start the broker (same port and data) mid-stream; the worker must ride through."""
    proc = run.worker().start()
    await run.feed(*endless(p.events, p.customers, rng.randrange(1 << 30)), p.rate)
    await fault_at(run, rng.uniform(0.3, 0.5), rng, p)
    since = time.monotonic()
    await asyncio.to_thread(run.broker.stop)
    run.broker.start()  # on the main thread, so the broker dies with us
    run.result.notes.append(f"broker down and back in {time.monotonic() - since:.1f}s")
    run.result.recoveries.append(await run.recovery(since, None, p.stall_s))
    if not proc.alive:
        run.result.notes.append(f"FINDING: the worker exited ({proc.proc and proc.proc.returncode}) on broker loss")
        proc.start()
    return await run.fed()


async def soak(run: Run, p: Profile, rng: random.Random) -> Expected:
    """A long stream through one worker, with its RSS sampled."""
    run.worker().start()
    await run.produce(mixed(p.soak_events, p.soak_customers, rng.randrange(1 << 30)), chunk=20_000)
    retention = int(run.settings["OBJECT_RETENTION_S"]), int(run.settings["DEDUPE_RETENTION_S"])
    expected = await asyncio.to_thread(expect, run.sent, *retention)
    run.result.expected = len(expected.transactions)
    return expected


async def exactly_once_kill(run: Run, p: Profile, rng: random.Random) -> Expected:
    """Scenario 1 with exactly-once processing."""
    return await kill9(run, p, rng, kills=p.eos_kills)


# ---------------------------------------------------------------- poison


def poison(i: int) -> list[tuple[str, Message]]:
    """One round of every kind of bad or odd input, as (what, message); ids unique per round."""
    c = f"cus_poison_{i:05d}"
    key = c.encode()

    def event(kind: str, event_type: str, obj: dict[str, Any], live: bool = False) -> bytes:
        return orjson.dumps(envelope(f"evt_p{i}_{kind}", event_type, obj, 1_700_000_000 + i, livemode=live))

    deep = b'{"a":' * 2000 + b"1" + b"}" * 2000
    nested: dict[str, Any] = {}
    for _ in range(200):  # orjson writes at most 255 levels
        nested = {"n": nested}
    odd_invoice = invoice(f"in_p{i}", c, "usd", 900, lines={"object": "list", "data": [nested]})
    return [
        ("good", (key, event("good", "customer_balance.adjustment", command(c, -1000, "usd")))),
        ("invalid_utf8", (key, b"\xff\xfe\xfa not utf-8 \x80")),
        ("invalid_json", (key, b'{"id": "evt_broken", "type": ')),
        ("deep_json_over_limit", (key, deep)),
        ("deep_json_in_object", (key, event("deep", "invoice.finalized", odd_invoice))),
        ("deep_json_array", (key, b"[" * 500 + b"]" * 500)),
        ("tombstone", (key, None)),
        ("null_key_bad", (None, b"\x00\x01")),
        ("null_key_good", (None, event("nk", "customer_balance.adjustment", command(f"{c}_nk", -5, "usd")))),
        ("invalid_envelope", (key, b'{"id": "evt_x", "type": "invoice.paid"}')),
        ("invalid_object", (key, event("obj", "customer_balance.adjustment", command(c, "500", "usd")))),  # type: ignore[arg-type]
        ("unsupported_currency", (key, event("cur", "customer_balance.adjustment", command(c, -5, "xyz")))),
        ("invalid_amount", (key, event("amt", "credit_note.created", credit_note(f"cn_p{i}", c, "usd", "in_x", -5)))),
        ("livemode_mismatch", (key, event("live", "customer_balance.adjustment", command(c, -5, "usd"), True))),
        ("initial_after_transactions", (key, event("init", "customer_balance.initial", command(c, -5, "usd")))),
    ]


def big_payload(i: int) -> Message:
    """A 5 MiB input message for a poison customer: `payload_too_large`."""
    pad = b"x" * BIG_PAYLOAD_BYTES
    return f"cus_poison_{i:05d}".encode(), b'{"id": "evt_big_' + str(i).encode() + b'", "pad": "' + pad + b'"}'


def flood(events: int, customers: int, seed: int, big: int) -> Iterator[Message]:
    """Good traffic with a round of poison every ~60 messages and `big` 5 MiB payloads spread through it."""
    every = 60
    big_at = {events * (k + 1) // (big + 1) for k in range(big)}
    for n, message in enumerate(mixed(events, customers, seed)):
        yield message
        if n % every == every - 1:
            yield from (m for _what, m in poison(n // every))
        if n in big_at:
            yield big_payload(n)


async def poison_flood(run: Run, p: Profile, rng: random.Random) -> Expected:
    """Poison interleaved at volume with good traffic; then probes behind 5 MiB payloads for hold-up."""
    run.worker().start()
    await run.produce(flood(p.poison_events, p.customers, rng.randrange(1 << 30), p.big_payloads), chunk=2000)
    expected = await asyncio.to_thread(expect, run.sent)
    run.result.expected = len(expected.transactions)
    await settle(run, expected, p.stall_s, p.timeout_s)
    for label, big in (("no payload ahead", False), ("behind a 5 MiB payload", True)):
        latency = await probe(run, big, p.stall_s)
        run.result.notes.append(f"probe latency {label}: {latency}s")
    expected = await asyncio.to_thread(expect, run.sent)
    run.result.expected = len(expected.transactions)
    return expected


async def probe(run: Run, big: bool, timeout: float) -> float | None:
    """Seconds from producing a good event (after a 5 MiB payload on its partition if `big`) to its transaction."""
    n = 90_000 + len(run.sent)
    customer = f"cus_poison_{n:05d}"
    messages: list[Message] = [big_payload(n)] if big else []
    event = envelope(f"evt_probe_{n}", "customer_balance.adjustment", command(customer, -1, "usd"), 1_700_000_000)
    messages.append((customer.encode(), orjson.dumps(event)))
    since = time.monotonic()
    await run.produce(messages)
    tid = transaction_id(f"evt_probe_{n}", 0)

    def arrived(_out: object) -> bool:
        run.tally.update()
        return tid in run.tally.ids

    try:
        await run.collector.wait_until(arrived, timeout, "the probe")
    except AssertionError:
        return None
    return round(time.monotonic() - since, 2)


async def combined(run: Run, p: Profile, rng: random.Random) -> Expected:
    """The CI run: poison interleaved with good traffic, a kill -9, a second worker joining, another kill -9."""
    first = run.worker().start()
    seed = rng.randrange(1 << 30)
    _, more = endless(p.events, p.customers, seed)  # the rest of the flood's good traffic
    await run.feed(list(flood(p.events, p.customers, seed, p.big_payloads)), more, p.rate, chunk=2000)
    second = run.worker()
    steps = [(0.2, first.kill, True), (0.45, second.start, False), (0.7, first.kill, True)]
    for fraction, action, restart in steps:
        await fault_at(run, fraction, rng, p)
        since, marks = time.monotonic(), run.marks()
        action()
        if restart:
            first.start()
        run.result.kills += restart
        run.result.rebalances += not restart
        run.result.recoveries.append(await run.recovery(since, marks, p.stall_s))
    return await run.fed()


SCENARIOS: dict[str, tuple[Scenario, dict[str, str]]] = {
    "kill9": (kill9, {}),
    "scale": (scale, {"PARTITIONS": "8"}),
    "broker-restart": (broker_restart, {}),
    "poison": (poison_flood, {}),
    "soak": (soak, {"OBJECT_RETENTION_S": str(SOAK_RETENTION_S), "DEDUPE_RETENTION_S": str(SOAK_RETENTION_S)}),
    "eos-kill9": (exactly_once_kill, EOS),
    "eos-scale": (scale, {"PARTITIONS": "8", **EOS}),
    "direct-scale": (scale, {"PARTITIONS": "8", "SKIP_REPARTITION": "true"}),
    "churn": (churn, {"PARTITIONS": "8", **TRAIL}),
    "eos-churn": (churn, {"PARTITIONS": "8", **EOS}),
    "direct-churn": (churn, {"PARTITIONS": "8", "SKIP_REPARTITION": "true", **TRAIL}),
    "combined": (combined, {"PARTITIONS": "8"}),
}
DEFAULT = [name for name in SCENARIOS if name != "combined"]


# ---------------------------------------------------------------- running


async def open_run(broker: KafkaBroker, root: Path, name: str, settings: dict[str, str]) -> Run:
    """A fresh app id and topics, a batching producer and a running collector."""
    names = Names(f"chaos-{name}-{uuid.uuid4().hex[:6]}")
    client = AIOKafkaProducer(
        bootstrap_servers=broker.bootstrap,
        acks="all",
        linger_ms=20,
        max_batch_size=1024 * 1024,
        max_request_size=MAX_MESSAGE_BYTES,
    )
    await client.start()
    collector = await Collector(broker.bootstrap, names).start()
    merged = {**names.settings(), **WORKER_SETTINGS, **settings}
    run = Run(broker, root / name, names, merged, client, collector, Result(name))
    await run.start_sampling()
    return run


async def run_scenario(broker: KafkaBroker, root: Path, name: str, profile: Profile, seed: int) -> Result:
    """Run one scenario, check it against the oracle and collect evidence."""
    scenario, settings = SCENARIOS[name]
    began = time.monotonic()
    run = await open_run(broker, root, name, settings)
    try:
        expected = await scenario(run, profile, random.Random(f"{seed}:{name}"))
        report = await settle(run, expected, profile.stall_s, profile.timeout_s)
        run.result.report = report
        run.result.zero_duplicates = name.startswith("eos")
        await evidence(run, report)
        await stale_states(run)
        if any(proc.alive for proc in run.workers):
            lag = await commit_lag(run)
            if lag:
                run.result.notes.append(f"committed offsets behind the end after settling: {lag}")
        scan_logs(run)
        if name == "soak":
            run.result.notes.append(rss_curve(run.rss))
    except Exception as exc:
        run.result.notes.append(f"scenario failed: {type(exc).__name__}: {exc}")
        scan_logs(run)
    finally:
        run.result.seconds = time.monotonic() - began
        await run.close()
    return run.result


def rss_curve(samples: Sequence[tuple[float, int, int]]) -> str:
    """Start, peak and end of the RSS curve, with points at each quarter of the output."""
    if not samples:
        return "no RSS samples"
    total = samples[-1][1] or 1
    mb = [s[2] / 2**20 for s in samples]
    quarters = []
    for q in (0.25, 0.5, 0.75):
        point = next((s for s in samples if s[1] >= total * q), samples[-1])
        quarters.append(f"{int(q * 100)}%={point[2] / 2**20:.0f}")
    second_half = [s[2] for s in samples if s[1] >= total / 2]
    growth = (second_half[-1] - second_half[0]) / 2**20 if second_half else 0.0
    return (
        f"RSS MB: start {mb[0]:.0f}, peak {max(mb):.0f}, end {mb[-1]:.0f}; by output {' '.join(quarters)}; "
        f"growth over the second half {growth:+.0f} MB ({len(samples)} samples over {samples[-1][0]:.0f}s)"
    )


def cell(values: Sequence[float | None]) -> str:
    """Recovery times as `median/max` seconds."""
    done = [v for v in values if v is not None]
    if not values:
        return "-"
    text = f"{statistics.median(done):.1f}/{max(done):.1f}" if done else "none"
    return text + (f" ({len(values) - len(done)} none)" if len(done) < len(values) else "")


def table(results: Sequence[Result]) -> str:
    """The results table, then each scenario's recovery times and notes."""
    head = ("scenario", "events", "kills", "rebal", "lost", "wrong", "confl", "dupes", "DLQ", "recov s", "RSS MB", "ok")
    rows = [head]
    for r in results:
        rep = r.report
        rows.append(
            (
                r.name,
                str(r.events),
                str(r.kills),
                str(r.rebalances),
                str(r.lost),
                str(r.wrong),
                "-" if rep is None else str(len(rep.conflicting)),
                str(r.duplicates),
                str(r.dlq),
                cell(r.recoveries),
                f"{r.peak_rss / 2**20:.0f}",
                "OK" if r.ok else "FAIL",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [
        "  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths, strict=True)))
        for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    for r in results:
        recoveries = ", ".join("none" if v is None else f"{v}s" for v in r.recoveries) or "-"
        lines.append(f"\n{r.name}: {r.seconds:.0f}s, {r.expected} expected transactions; recovery: {recoveries}")
        if r.reapplied:
            lines.append(f"  - {r.reapplied} ids applied twice by the contract itself (duplicate after retention)")
        lines.extend(f"  - {note}" for note in r.notes)
    return "\n".join(lines)


async def run_suite(broker: KafkaBroker, root: Path, names: Sequence[str], profile: Profile, seed: int) -> list[Result]:
    """Run the named scenarios one after another on `broker`, printing each result as it ends."""
    results = []
    for name in names:
        print(f"-- {name} ...", flush=True)
        result = await run_scenario(broker, root, name, profile, seed)
        print(table([result]), flush=True)
        results.append(result)
    return results


@dataclass(frozen=True)
class Options:
    """What `balance-worker chaos` was asked to do."""

    full: bool
    scenarios: list[str]
    events: int | None
    seed: int
    workdir: Path | None


def parse_args(argv: Sequence[str]) -> Options:
    """Options from `balance-worker chaos ...`."""
    parser = argparse.ArgumentParser(
        prog="balance-worker chaos",
        description="Run fault scenarios against a local Apache Kafka broker and print what they found.",
    )
    parser.add_argument("--full", action="store_true", help="the full sizes (10 kills, 50k events, 1M soak)")
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS), help="run only these (repeatable)")
    parser.add_argument("--events", type=int, metavar="N", help="events per scenario stream (soak included)")
    parser.add_argument("--seed", type=int, default=3, help="seed of streams and fault moments (3)")
    parser.add_argument("--workdir", type=Path, help="where logs go (default: a new temporary directory)")
    args = parser.parse_args(argv)
    return Options(args.full, args.scenario or DEFAULT, args.events, args.seed, args.workdir)


def profile_of(options: Options) -> Profile:
    """The profile the options ask for."""
    base = FULL if options.full else SHORT
    if options.events is None:
        return base
    n = options.events
    return replace(base, events=n, poison_events=n, soak_events=n)


def run(options: Options) -> int:
    """Start the broker, run the scenarios, print the table; always stops every process. Returns the exit code."""
    root = options.workdir or Path(tempfile.mkdtemp(prefix="balance-chaos-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"-- logs in {root}", flush=True)
    broker = KafkaBroker(fetch_libs(), root / "kafka", config=BROKER_CONFIG, heap="1g")
    results: list[Result] = []
    try:
        broker.start()
        results = asyncio.run(run_suite(broker, root, options.scenarios, profile_of(options), options.seed))
    except KeyboardInterrupt:
        print("\n-- interrupted", flush=True)
        return 130
    finally:
        with interrupts_ignored():
            broker.close()
            shutil.rmtree(broker.log_dirs, ignore_errors=True)
    print("\n== chaos " + ("(full)" if options.full else "(short)") + "\n" + table(results), flush=True)
    return 0 if results and all(r.ok for r in results) else 1


def main(argv: list[str]) -> None:
    """`balance-worker chaos [--full] [--scenario NAME ...] [--events N] [--seed S] [--workdir DIR]`."""
    options = parse_args(argv)
    exit_with(lambda: run(options))
