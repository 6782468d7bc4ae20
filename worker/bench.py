"""`balance-worker bench`: the worker against the raw-client ceiling, in one run on one broker.

0. Warm-up: the raw pipe and a throw-away worker over streams of their own, until the broker's JIT compiler
   is quiet (`warm_up`); a broker in service has long been warm.
1. Baseline: a raw aiokafka pipe (consume → `json.loads` → produce) over the same
   prefilled stream, in a process of its own as the worker is; its rate is the
   ceiling for any Python worker here.
2. Throughput: the worker on a prefilled realistic mixed stream (every family,
   duplicates, unhandled types, bad input, many customers).
3. Latency: a steady offered load of half the worker's measured rate; each
   event's time from produce to its last transaction being visible. It starts
   once the broker and the workers are quiet (`quiet`), and so does the raw
   pipe's latency run, which gives the floor at the same load. The throughput
   run also starts once they are quiet, after the workers' start-up.

The raw pipe's rate comes from the span between its first and its last output
record (their create timestamps), so its start-up is excluded. The workers are
started and ready first, and stopped while the throughput run's stream is
written (`paused`), as the raw pipe's is written before it starts; their rate
comes from the span between their resumption and their last output record.
With `--workers N` the throughput and latency runs use N worker processes; the
CPU seconds they spend on the stream, per event, are reported too, and so are
the mean bytes of one customer's table entry at the end. The run's files,
Kafka's log among them, are kept in memory unless `--broker-data disk` (see
`MEMORY_DIR`). With `--pin` the workers and the raw pipe run on CPUs of their
own, apart from the broker and the driver (`Placement`). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from worker.brokers.kafka import KafkaBroker, fetch_libs
from worker.brokers.process import BrokerProcess
from worker.brokers.tansu import TansuBroker
from worker.core.ids import transaction_id
from worker.harness.oracle import Expected, expect
from worker.harness.placement import Placement
from worker.harness.worker_process import READY, Names, WorkerProcess
from worker.sample import mixed
from worker.streams.publish import Record, send_batched

TICK_S = 0.002
"""How often the latency run sends the events due."""

WARM_WINDOW_S = 5.0
"""The length of each fixed-rate window of the broker's warm-up (see `warm_up`)."""

WARM_JIT_CORES = 0.05
"""The share of a core the broker's JIT compiler may take over a warm-up window for the broker to count as warm."""

QUIET_CORES = 0.4
"""The CPU (in cores) the broker and the workers may use, idle, before a throughput or latency run starts (see
`quiet`)."""

Message = tuple[bytes, bytes]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The bench's options."""
    parser = argparse.ArgumentParser(prog="balance-worker bench", description=__doc__.splitlines()[0])
    parser.add_argument("--broker", choices=("kafka", "tansu"), default="kafka")
    parser.add_argument("--events", type=int, default=100_000, help="events in the throughput runs")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--latency-seconds", type=float, default=10.0, help="length of the half-load run")
    parser.add_argument(
        "--latency-rate", type=float, help="events/s offered in the latency runs (default: half the worker's rate)"
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes in the throughput and latency runs")
    parser.add_argument(
        "--skip-repartition", action="store_true", help="run the workers with BALANCE_SKIP_REPARTITION=true"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a worker setting, without its BALANCE_ prefix (FETCH_MIN_BYTES=65536); repeatable",
    )
    parser.add_argument(
        "--broker-data",
        choices=("memory", "disk"),
        default="memory",
        help="where the run's files and Kafka's log live: memory (/dev/shm, as Tansu keeps its log) or disk",
    )
    parser.add_argument(
        "--warm-up-seconds",
        type=float,
        default=90.0,
        help="at most this long warming the broker up before the measurements (see warm_up); 0: none",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="give the measured processes (the workers, the raw pipe) a CPU of their own, the broker and the "
        "driver the others (see Placement)",
    )
    parser.add_argument("--timeout", type=float, default=600.0)
    return parser.parse_args(argv)


def offered_rate(options: argparse.Namespace, worker_rate: float) -> float:
    """The events/s offered in the latency runs: `--latency-rate`, or half the worker's measured rate."""
    return float(options.latency_rate or max(1.0, worker_rate / 2))


async def create_topics(bootstrap: str, names: Sequence[str], partitions: int) -> None:
    """Create topics up front so no client waits on auto-creation."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str, messages: Sequence[Message]) -> None:
    """Send as fast as the client batches, and wait for every ack."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(topic, value=value, key=key) for key, value in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def consumer(bootstrap: str, *topics: str, group: str | None = None) -> AIOKafkaConsumer:
    """A consumer from the beginning, committed reads only."""
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=group is not None,
        isolation_level="read_committed",
        max_poll_records=10_000,
        fetch_max_bytes=64 * 1024 * 1024,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=1_000,
        fetch_max_wait_ms=10,
    )


async def span_rate(
    bootstrap: str, topics: Sequence[str], wanted: int, timeout: float, since: float | None = None
) -> float:
    """Records per second between the first of `wanted` output records, or the time `since` (epoch seconds),
    and the last."""
    reader = consumer(bootstrap, *topics)
    await reader.start()
    stamps: list[int] = []
    deadline = time.monotonic() + timeout
    try:
        while len(stamps) < wanted:
            if time.monotonic() > deadline:
                raise TimeoutError(f"saw {len(stamps)} of {wanted} output records")
            for records in (await reader.getmany(timeout_ms=500)).values():
                stamps.extend(r.timestamp for r in records)
    finally:
        await reader.stop()
    span_s = max(stamps) / 1000 - (min(stamps) / 1000 if since is None else since)
    return wanted / span_s if span_s > 0 else float("inf")


async def raw_pipe(bootstrap: str, source: str, sink: str, count: int | None) -> None:
    """The baseline: consume, `json.loads`, produce, with no per-record await; `count` records (None: forever)."""
    reader = consumer(bootstrap, source, group=f"bench-raw-{uuid.uuid4().hex[:6]}")
    writer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=256 * 1024)
    await reader.start()
    await writer.start()
    done = 0
    try:
        while count is None or done < count:
            batches = await reader.getmany(timeout_ms=500, max_records=10_000)
            futures = []
            for records in batches.values():
                for record in records:
                    with contextlib.suppress(ValueError):
                        json.loads(record.value)
                    futures.append(await writer.send(sink, value=record.value, key=record.key))
            done += len(futures)
            if futures:
                await asyncio.gather(*futures)
    finally:
        await writer.stop()
        await reader.stop()


def predicted(messages: Sequence[Message]) -> Expected:
    """What the contract predicts for a stream, in its order: the pure core, one state per customer (each message
    its own source, by its index)."""
    return expect([(("bench", 0, i), k, v) for i, (k, v) in enumerate(messages)])


def renamed(messages: Iterable[Message], tag: str) -> list[Message]:
    """The stream with new customers (`cus_` → `cu<tag>_`) and event ids (`evt_` → `evt_<tag>`): the oracle
    starts them from no state, as the worker does."""
    customer, event = f"cu{tag}_".encode(), f'"evt_{tag}'.encode()
    return [(k.replace(b"cus_", customer), v.replace(b"cus_", customer).replace(b'"evt_', event)) for k, v in messages]


def output_count(messages: Sequence[Message]) -> int:
    """Transactions and dead letters the contract predicts for the stream.

    Summaries are left out: their topic is compacted, so the broker may already have removed some.
    """
    expected = predicted(messages)
    return len(expected.order) + len(expected.dead_letters)


def json_id(value: bytes | None) -> str | None:
    """The `id` of a JSON object; None for anything else (the raw pipe copies bad input too)."""
    try:
        found = orjson.loads(value or b"")["id"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    return found if isinstance(found, str) else None


def event_ids(messages: Sequence[Message]) -> Iterator[tuple[int, str]]:
    """(index, event id) of each message whose event id no other message has: a copy in the raw pipe's output
    is then that message's."""
    ids: dict[str, int] = {}
    for i, (_k, value) in enumerate(messages):
        event_id = json_id(value)
        if event_id is not None:
            ids[event_id] = -1 if event_id in ids else i
    return ((i, event_id) for event_id, i in ids.items() if i >= 0)


def last_txn_ids(messages: Sequence[Message]) -> Iterator[tuple[int, str]]:
    """(index, id of the last transaction) of each message whose event made transactions.

    A redelivered event makes none: its transactions were made, and seen, for the first copy.
    """
    made = set(predicted(messages).order)
    for i, (_k, value) in enumerate(messages):
        event_id = json_id(value)
        if event_id is None:
            continue
        legs = [txn for txn in (transaction_id(event_id, n) for n in range(3)) if txn in made]
        if legs:
            made.difference_update(legs)
            yield i, legs[-1]


async def latency(
    bootstrap: str, topic: str, out_topic: str, messages: Sequence[Message], rate: float, wanted: dict[int, str]
) -> list[float]:
    """Offer `messages` at `rate`/s; return the time from each message in `wanted` being produced to the output
    record with its id there (the `id` of the JSON value) being visible, in ms.

    The events due are sent every `TICK_S`, one batch per partition, so that the driver takes little of the
    CPU the worker and the broker share with it. The driver's cyclic collector is off meanwhile (see
    `collector_off`).
    """
    with collector_off():
        return await _latency(bootstrap, topic, out_topic, messages, rate, wanted)


@contextlib.contextmanager
def collector_off() -> Iterator[None]:
    """The cyclic collector off within (reference counting still frees nearly everything).

    The driver holds every message and time of a run; at Python's thresholds its full collections took up to
    62 ms each, 14 in a 38-second bench, and delayed its reads of whatever output came meanwhile: the
    latency it measured, of the worker and of the raw pipe, had them in its tail.
    """
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def _latency(
    bootstrap: str, topic: str, out_topic: str, messages: Sequence[Message], rate: float, wanted: dict[int, str]
) -> list[float]:
    missing = set(wanted.values())
    seen: dict[str, float] = {}
    reader = consumer(bootstrap, out_topic)
    await reader.start()
    await reader.getmany(timeout_ms=100)
    await reader.seek_to_end()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    sent_at: list[float] = []
    acks: list[asyncio.Future[Any]] = []

    async def read() -> None:
        while missing:
            for records in (await reader.getmany(timeout_ms=100)).values():
                now = time.monotonic()
                for r in records:
                    found = json_id(r.value)
                    if found is not None and found not in seen:
                        seen[found] = now
                        missing.discard(found)

    reading = asyncio.create_task(read())
    start = time.monotonic()
    try:
        while len(sent_at) < len(messages):
            now = time.monotonic()
            due = messages[len(sent_at) : int((now - start) * rate) + 1]
            sent_at.extend(now for _ in due)
            acks.extend(await send_batched(producer, [Record(topic, key, value) for key, value in due]))
            await asyncio.sleep(TICK_S)
        await asyncio.gather(*acks)
        await asyncio.wait_for(reading, timeout=120)
    finally:
        reading.cancel()
        await producer.stop()
        await reader.stop()
    return [(seen[txn] - sent_at[i]) * 1000 for i, txn in wanted.items() if txn in seen]


async def quiet(
    pids: Sequence[int | None], window_s: float = 1.0, limit_s: float = 30.0, cores: float = QUIET_CORES
) -> float:
    """Wait until the processes together use under `cores` for a whole `window_s` (`limit_s` at most); return
    the seconds waited.

    Before the bench warmed the broker up (`warm_up`), Kafka spent several seconds after the throughput run at
    about a core of CPU, most of it its JIT compiler's: a latency run started at once measured that (medians of
    250 ms for two seconds on the 2-core machine), not the steady offered load.
    """
    start = time.monotonic()
    while time.monotonic() - start < limit_s:
        before = sum(cpu_seconds(pid) for pid in pids)
        await asyncio.sleep(window_s)
        if sum(cpu_seconds(pid) for pid in pids) - before < cores * window_s:
            break
    return time.monotonic() - start


def cpu_seconds(pid: int | None) -> float:
    """User plus system CPU time the process has used so far."""
    if pid is None:
        return 0.0
    return _stat_cpu(Path(f"/proc/{pid}/stat").read_text())


def jit_cpu_seconds(pid: int | None) -> float:
    """CPU time a JVM's JIT compiler threads (HotSpot's `C1 CompilerThread`s and `C2 ...`) have used so far: 0
    for any other process, Tansu's among them."""
    if pid is None:
        return 0.0
    total = 0.0
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            text = stat.read_text()
            if "CompilerThre" in text[text.index("(") : text.rindex(")")]:
                total += _stat_cpu(text)
    return total


def _stat_cpu(text: str) -> float:
    """User plus system CPU time from a `/proc/.../stat` line."""
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def paused(pids: Sequence[int | None]) -> Iterator[None]:
    """The (worker) processes stopped (SIGSTOP) within, and continued after.

    Written while they run, the stream's writer shared the CPU with them for the first part of their run
    (about 1 s of a 2–3 s run of 50,000 events), where the raw pipe reads a stream written before it starts.
    A pause shorter than the group session timeout costs no rebalance.
    """
    stopped = [pid for pid in pids if pid is not None]
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)


async def ready(workers: Sequence[WorkerProcess], timeout: float) -> None:
    """Return once every worker has logged that it is ready (polling the logs)."""
    deadline = time.monotonic() + timeout
    while not all(READY in w.log_path.read_bytes() for w in workers if w.log_path.exists()):
        for w in workers:
            w.check()
        if time.monotonic() > deadline:
            raise TimeoutError("the workers did not get ready")
        await asyncio.sleep(0.2)


async def entry_bytes(bootstrap: str, topic: str) -> float:
    """The mean size of the latest value of each key in a (changelog) topic."""
    probe = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await probe.start()
    try:
        parts = [TopicPartition(topic, p) for p in await probe.partitions_for(topic)]
    finally:
        await probe.stop()
    reader = consumer(bootstrap)
    await reader.start()
    latest: dict[bytes | None, int] = {}
    try:
        ends = await reader.end_offsets(parts)
        reader.assign(parts)
        await reader.seek_to_beginning(*parts)
        while [tp for tp in parts if await reader.position(tp) < ends[tp]]:
            for records in (await reader.getmany(timeout_ms=500)).values():
                latest.update((r.key, len(r.value or b"")) for r in records)
    finally:
        await reader.stop()
    return statistics.fmean(latest.values()) if latest else 0.0


def peak_rss_mb(pid: int | None) -> float:
    """The process's peak resident set (VmHWM), in MiB."""
    if pid is None:
        return 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentiles(samples: Sequence[float]) -> list[float]:
    """The 99 cut points of the samples (zeros for fewer than two)."""
    return statistics.quantiles(samples, n=100) if len(samples) >= 2 else [0.0] * 99


def start_pipe(bootstrap: str, source: str, sink: str, count: int | None, place: Placement) -> subprocess.Popen[bytes]:
    """The raw pipe (`raw_pipe`) in a process of its own, as the worker is, placed as the workers are."""
    code = f"import asyncio, worker.bench as b; asyncio.run(b.raw_pipe({bootstrap!r}, {source!r}, {sink!r}, {count!r}))"
    pipe = subprocess.Popen([sys.executable, "-c", code])
    place.measured(pipe.pid)
    return pipe


async def pipe_bulk(bootstrap: str, source: str, sink: str, count: int, place: Placement, timeout: float) -> None:
    """Run the raw pipe over the `count` records written to `source`, until it is done."""
    pipe = start_pipe(bootstrap, source, sink, count, place)
    try:
        code = await asyncio.to_thread(pipe.wait, timeout)
    finally:
        if pipe.poll() is None:
            pipe.kill()
            pipe.wait()
    if code != 0:
        raise RuntimeError(f"the raw pipe exited with code {code}")


async def pipe_latency(
    bootstrap: str, messages: Sequence[Message], rate: float, partitions: int, place: Placement
) -> list[float]:
    """The latency run through the raw pipe, once the workers stopped."""
    source, sink = "bench.lat.in", "bench.lat.out"
    await create_topics(bootstrap, [source, sink], partitions)
    pipe = start_pipe(bootstrap, source, sink, None, place)
    try:
        await pipe_ready(bootstrap, source, sink)
        return await latency(bootstrap, source, sink, messages, rate, dict(event_ids(messages)))
    finally:
        pipe.terminate()
        pipe.wait(30)


async def pipe_ready(bootstrap: str, source: str, sink: str, timeout: float = 60.0) -> None:
    """Return once a probe sent through the raw pipe came out (it joined its group and reads)."""
    reader = consumer(bootstrap, sink)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await reader.start()
    await producer.start()
    deadline = time.monotonic() + timeout
    try:
        await producer.send_and_wait(source, b'{"id": "probe"}')
        while not any((await reader.getmany(timeout_ms=200)).values()):
            if time.monotonic() > deadline:
                raise TimeoutError("the raw pipe did not start")
    finally:
        await producer.stop()
        await reader.stop()


KAFKA_DEFAULTS = {
    "log.roll.ms": str(7 * 24 * 3600 * 1000),
    "log.cleaner.backoff.ms": "15000",
    "log.cleaner.min.cleanable.ratio": "0.5",
    "log.segment.delete.delay.ms": "60000",
}
"""Kafka's own segment and cleaner settings, for the bench's broker.

The test broker rolls every partition's segment every 5 s and cleans any dirt so that tests see compaction;
on this machine that stalled produce requests for 100–500 ms every few seconds, and the worker's p99 with
them (at 4,000 events/s: 640 ms against 85 ms with these).
"""


MEMORY_DIR = Path("/dev/shm")
"""A tmpfs, where `--broker-data memory` puts the run's files, Kafka's log among them.

On this machine's disk (ext4 on a VM), Kafka's appends wrote its memory-mapped index pages through page faults
that waited on the file system: produce requests of the worker's size took 80–310 ms on the broker (its
request log's local time) where the same ones took 5–25 ms once the index pages were written, and the
broker's CPU per event was about twice its CPU in memory. Tansu keeps its log in memory always.
"""


MEMORY_MIN_FREE_BYTES = 1 << 30
"""The room `--broker-data memory` asks of `MEMORY_DIR`: a run of 100,000 events writes a few hundred MB (a
container's `/dev/shm` is often 64 MB)."""


def run_dir(broker_data: str) -> Path:
    """A new directory for the run's files (the broker's data and log, the workers' logs), in memory or on disk."""
    if broker_data == "disk":
        return Path(tempfile.mkdtemp(prefix="balance-bench-"))
    if not MEMORY_DIR.is_dir() or shutil.disk_usage(MEMORY_DIR).free < MEMORY_MIN_FREE_BYTES:
        room = f"{MEMORY_MIN_FREE_BYTES >> 20} MiB"
        raise SystemExit(f"{MEMORY_DIR} is missing or has under {room} free: run the bench with --broker-data disk")
    return Path(tempfile.mkdtemp(prefix="balance-bench-", dir=MEMORY_DIR))


def start_worker(bootstrap: str, workdir: Path, settings: dict[str, str], place: Placement) -> WorkerProcess:
    """A worker process, placed as a measured one."""
    worker = WorkerProcess(bootstrap, workdir, settings, loglevel="info").start()
    place.measured(worker.pid)
    return worker


def start_broker(kind: str, workdir: Path) -> BrokerProcess:
    """Apache Kafka from the Maven jars (with `KAFKA_DEFAULTS`), or the embedded Tansu."""
    if kind == "tansu":
        return TansuBroker(log_dir=workdir / "tansu").start()
    return KafkaBroker(fetch_libs(), workdir / "kafka", config=KAFKA_DEFAULTS).start()


async def bulk_run(
    bootstrap: str,
    names: Names,
    workers: Sequence[WorkerProcess],
    messages: Sequence[Message],
    wanted: int,
    timeout: float,
) -> tuple[float, float]:
    """The workers' events/s over `messages`, which produce `wanted` output records, and the CPU seconds they
    spent on them.

    The stream is written first, as the raw pipe's is, while the workers are paused: its writer takes no CPU
    from them. The rate runs from their resumption (a backlog's first outputs wait for a whole batch and its
    commit) to their last output record.
    """
    with paused([w.pid for w in workers]):
        await produce(bootstrap, names.topic("invoice_events"), messages)
        cpu_before = sum(cpu_seconds(w.pid) for w in workers)
        resumed = time.time()
    outputs = [names.topic(t) for t in ("transactions", "dlq")]
    records_rate = await span_rate(bootstrap, outputs, wanted, timeout, since=resumed)
    cpu = sum(cpu_seconds(w.pid) for w in workers) - cpu_before
    return records_rate * len(messages) / wanted, cpu


async def warm_up(
    broker: BrokerProcess, settings: dict[str, str], workdir: Path, options: argparse.Namespace, place: Placement
) -> float:
    """Warm the broker up before the measurements; return the seconds it took.

    A JVM compiles the code it runs hot: a fresh Kafka's JIT compiler took 0.4 of a core over the first 12 s
    at 10,000 events/s, on the two cores the broker shares with the worker and the driver, and the worker's p99
    was 105–180 ms there against 45–69 ms once it was done. A broker in service has long been warm. So the raw
    pipe and a throw-away worker (`settings` under names of its own) read a stream of their own in bulk, then
    the worker reads more at half its rate in windows of `WARM_WINDOW_S`, until the broker's JIT compiler takes
    under `WARM_JIT_CORES` of a window or `--warm-up-seconds` have passed. Tansu has no JIT: one window.
    """
    start = time.monotonic()
    if options.warm_up_seconds <= 0:
        return 0.0
    bootstrap = broker.bootstrap
    messages = renamed(mixed(options.events, customers=options.customers, seed=3), "w")
    await create_topics(bootstrap, ["bench.warm.in", "bench.warm.out"], options.partitions)
    await produce(bootstrap, "bench.warm.in", messages)
    await pipe_bulk(bootstrap, "bench.warm.in", "bench.warm.out", len(messages), place, options.timeout)
    names = Names("warm")
    worker = start_worker(bootstrap, workdir / "warm", {**settings, **names.settings()}, place)
    try:
        await ready([worker], options.timeout)
        bulk, _ = await bulk_run(bootstrap, names, [worker], messages, output_count(messages), options.timeout)
        rate = offered_rate(options, bulk)
        window = 0
        while time.monotonic() - start < options.warm_up_seconds:
            jit, began = jit_cpu_seconds(broker.pid), time.monotonic()
            stream = renamed(
                mixed(int(rate * WARM_WINDOW_S), customers=options.customers, seed=4 + window), f"w{window}"
            )
            await latency(bootstrap, names.topic("invoice_events"), names.topic("transactions"), stream, rate, {})
            window += 1
            if jit_cpu_seconds(broker.pid) - jit < WARM_JIT_CORES * (time.monotonic() - began):
                break
    finally:
        worker.stop()
    return time.monotonic() - start


TANSU_GROUP = {"SESSION_TIMEOUT_S": "10", "HEARTBEAT_INTERVAL_S": "1"}
"""The workers' group timeouts on Tansu, which holds each JoinGroup for half the session timeout: short, but
long enough to outlast the workers' pause while the stream is written (`paused`)."""


async def run(options: argparse.Namespace, broker: BrokerProcess, workdir: Path, place: Placement) -> dict[str, Any]:
    """The three measurements, with the processes where `place` puts them; returns the report."""
    bootstrap = broker.bootstrap
    messages = list(mixed(options.events, customers=options.customers, seed=1))
    # predicted before any run: the pure core takes a second of CPU per 40,000 events, which it took from the
    # workers while they ran
    wanted = output_count(messages)
    names = Names("bench")
    settings = {**names.settings(), "PARTITIONS": str(options.partitions)}
    if options.skip_repartition:
        settings["SKIP_REPARTITION"] = "true"
    if isinstance(broker, TansuBroker):
        settings.update(TANSU_GROUP)
    settings.update(item.split("=", 1) for item in options.set)
    place.rest(broker.pid)
    place.rest(os.getpid())
    warmed = await warm_up(broker, settings, workdir, options, place)
    jit_before = jit_cpu_seconds(broker.pid)

    await create_topics(bootstrap, ["bench.raw.in", "bench.raw.out"], options.partitions)
    await produce(bootstrap, "bench.raw.in", messages)
    await pipe_bulk(bootstrap, "bench.raw.in", "bench.raw.out", len(messages), place, options.timeout)
    baseline = await span_rate(bootstrap, ["bench.raw.out"], len(messages), options.timeout)

    workers = [start_worker(bootstrap, workdir / f"worker{i}", settings, place) for i in range(options.workers)]
    try:
        await ready(workers, options.timeout)
        await quiet([broker.pid, *(w.pid for w in workers)])
        worker_rate, cpu = await bulk_run(bootstrap, names, workers, messages, wanted, options.timeout)
        state_bytes = await entry_bytes(bootstrap, names.customers_changelog)
        offered = offered_rate(options, worker_rate)
        count = max(100, int(offered * options.latency_seconds))
        later = renamed(mixed(count, customers=options.customers, seed=2, start=1_800_000_000), "l")
        settled = await quiet([broker.pid, *(w.pid for w in workers)])
        lat = await latency(
            bootstrap,
            names.topic("invoice_events"),
            names.topic("transactions"),
            later,
            offered,
            dict(last_txn_ids(later)),
        )
        rss = max(peak_rss_mb(w.pid) for w in workers)
    finally:
        for w in workers:
            w.stop()
    await quiet([broker.pid])
    base_lat = await pipe_latency(bootstrap, later, offered, options.partitions, place)
    jit = jit_cpu_seconds(broker.pid) - jit_before
    quantiles, base_quantiles = percentiles(lat), percentiles(base_lat)
    return {
        "events": len(messages),
        "worker_events_per_s": round(worker_rate),
        "baseline_events_per_s": round(baseline),
        "ratio": round(worker_rate / baseline, 3),
        "p50_ms": round(quantiles[49], 1),
        "p99_ms": round(quantiles[98], 1),
        "baseline_p50_ms": round(base_quantiles[49], 1),
        "baseline_p99_ms": round(base_quantiles[98], 1),
        "latency_offered_events_per_s": round(offered),
        "latency_samples": len(lat),
        "latency_quiet_wait_s": round(settled, 1),
        "peak_rss_mb": round(rss, 1),
        "broker": "apache-kafka" if isinstance(broker, KafkaBroker) else "tansu",
        "broker_data": options.broker_data if isinstance(broker, KafkaBroker) else "memory",
        "workers": options.workers,
        "partitions": options.partitions,
        "skip_repartition": options.skip_repartition,
        "cpu_ms_per_event": round(cpu * 1000 / len(messages), 4),
        "customers": options.customers,
        "state_bytes_per_customer": round(state_bytes),
        "warm_up_s": round(warmed, 1),
        "broker_jit_cpu_s": round(jit, 2),
        "pinned": options.pin,
    }


def main(argv: list[str]) -> None:
    """`balance-worker bench [--broker kafka|tansu] [--events N] ...`: print the report as JSON."""
    options = parse_args(argv)
    place = Placement(options.pin)  # refuses --pin on one CPU before a broker starts
    workdir = run_dir(options.broker_data)
    broker = start_broker(options.broker, workdir)
    try:
        report = asyncio.run(run(options, broker, workdir, place))
    except BaseException:
        print(f"the broker's and the workers' logs are kept in {workdir}", file=sys.stderr)
        raise
    finally:
        broker.close()
    shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(report))
