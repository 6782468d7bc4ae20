"""The worker end to end on Apache Kafka: every rule, bad input, duplicates, restarts and kill -9."""

import asyncio
import base64
import json
from pathlib import Path
from typing import get_args

import aiohttp
import orjson
import pytest

from tests.integration.conftest import Rig
from tests.integration.test_api import wait_ready
from worker.harness.collector import Output
from worker.harness.oracle import Report, check, expect
from worker.harness.worker_process import WorkerProcess
from worker.models.records import TransactionType
from worker.sample import command, envelope, every_type, mixed

ALL_TYPES = set(get_args(TransactionType))
TIMEOUT = 120.0


async def wait_for_metric(port: int, line: str, timeout: float = 30.0) -> str:
    """Poll the worker's /metrics page until it shows `line` (a counter moves when a batch is done)."""
    deadline = asyncio.get_running_loop().time() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                text = await response.text()
            if line in text.splitlines() or asyncio.get_running_loop().time() > deadline:
                assert line in text.splitlines(), text
                return text
            await asyncio.sleep(0.2)


async def kill_9_during(rig: Rig, proc: WorkerProcess, kills: int) -> int:
    """Kill -9 and restart the worker at each k/(kills+1) of the expected transactions; returns their number."""
    expected_total = len(expect(rig.producer.sent).transactions)
    for k in range(1, kills + 1):
        target = expected_total * k // (kills + 1)

        def reached(out: Output, target: int = target) -> bool:
            return len({t["id"] for t in out.transactions}) >= target

        await rig.collector.wait_until(reached, TIMEOUT, f"{k}/{kills + 1} of the stream")
        proc.kill()
        proc.start()
    return expected_total


async def settle(rig: Rig, timeout: float = TIMEOUT) -> Report:
    """Wait until the outputs hold everything the oracle expects, then compare them."""
    expected = expect(rig.producer.sent)

    def complete(out: object) -> bool:
        report = check(
            expected,
            rig.collector.output.transactions,
            rig.collector.output.summaries,
            rig.collector.output.dead_letters,
        )
        return not (report.missing or report.summaries_wrong or report.dlq_missing)

    try:
        await rig.collector.wait_until(complete, timeout, "every expected output")
    except AssertionError:
        out = rig.collector.output
        report = check(expected, out.transactions, out.summaries, out.dead_letters)
        print(
            f"missing {len(report.missing)}: {report.missing[:5]}; summaries wrong {report.summaries_wrong[:5]}; "
            f"dlq missing {report.dlq_missing[:5]}"
        )
        for proc in rig.workers:
            print(proc.log_tail())
        raise
    out = rig.collector.output
    return check(expected, out.transactions, out.summaries, out.dead_letters)


async def test_every_rule_on_every_input_topic(rig: Rig, shared_dir: Path) -> None:
    proc = rig.worker().start()
    topics = ["invoice_events", "credit_note_events", "checkout_events", "balance_commands"]
    for i, setting in enumerate(topics):
        customer = f"cus_rule{i}"
        await rig.producer.send_many(
            rig.topic(setting), [(customer.encode(), orjson.dumps(e)) for e in every_type(customer)]
        )
    expanded = envelope("evt_expanded", "customer_balance.adjustment", command("cus_x", -100, "USD"), 1_700_000_000)
    expanded["data"]["object"]["customer"] = {"id": "cus_x", "object": "customer", "email": "x@example.com"}
    await rig.producer.send(rig.topic("invoice_events"), b"cus_x", orjson.dumps(expanded))
    for name, event_type in [
        ("invoice", "invoice.finalized"),
        ("credit_note", "credit_note.created"),
        ("checkout_session", "checkout.session.completed"),
    ]:
        obj = json.loads((shared_dir / "fixtures" / "stripe" / f"{name}.json").read_text())
        await rig.producer.send(
            rig.topic("invoice_events"), None, orjson.dumps(envelope(f"evt_fx_{name}", event_type, obj, 1_700_000_000))
        )

    report = await settle(rig)

    assert report.ok, report
    types = {t["type"] for t in rig.collector.output.transactions}
    assert types == ALL_TYPES
    expanded_txn = next(t for t in rig.collector.output.transactions if t["customer"] == "cus_x")
    assert (expanded_txn["amount"], expanded_txn["currency"]) == (-100, "usd")
    assert not rig.collector.output.dead_letters
    unhandled = envelope("evt_unhandled", "customer.updated", {"id": "cus_x", "object": "customer"}, 1_700_000_000)
    await rig.producer.send(rig.topic("invoice_events"), b"cus_x", orjson.dumps(unhandled))
    metrics = await wait_for_metric(proc.web_port, 'balance_events_total{code="",outcome="skipped_unhandled"} 1.0')
    applied = sum(1 for e in expect(rig.producer.sent).outcomes.elements() if e == "applied")
    assert f'balance_events_total{{code="",outcome="applied"}} {applied}.0' in metrics
    assert 'balance_transactions_total{currency="jpy",type="invoice_too_large"} 4.0' in metrics


async def test_bad_input_lands_in_the_dlq_with_its_payload(rig: Rig) -> None:
    rig.worker().start()
    topic = rig.topic("invoice_events")
    c = "cus_bad"
    good = envelope("evt_good_1", "customer_balance.adjustment", command(c, -700, "usd"), 1_700_000_000)
    live = envelope("evt_live", "customer_balance.adjustment", command(c, -1, "usd"), 1_700_000_001, livemode=True)
    initial = envelope("evt_init", "customer_balance.initial", command(c, -1, "usd"), 1_700_000_002)
    bad: dict[str, bytes | None] = {
        "payload_too_large": b"{" + b" " * (1024 * 1024 + 1) + b"}",
        "invalid_json": b"\xff\xfe not utf-8",
        "invalid_envelope": b'{"id": "evt_x", "type": "invoice.paid"}',
        "invalid_object": orjson.dumps(envelope("evt_o", "customer_balance.adjustment", command(c, "500", "usd"), 1)),  # type: ignore[arg-type]
        "unsupported_currency": orjson.dumps(
            envelope("evt_c", "customer_balance.adjustment", command(c, -5, "xyz"), 1)
        ),
        "invalid_amount": orjson.dumps(envelope("evt_a", "customer_balance.adjustment", command(c, 0, "usd"), 1)),
    }
    await rig.producer.send(topic, c.encode(), orjson.dumps(good))
    sources = {code: await rig.producer.send(topic, c.encode(), payload) for code, payload in bad.items()}
    sources["livemode_mismatch"] = await rig.producer.send(topic, c.encode(), orjson.dumps(live))
    sources["initial_after_transactions"] = await rig.producer.send(topic, c.encode(), orjson.dumps(initial))
    tombstone = await rig.producer.send(topic, c.encode(), None)
    keyless = await rig.producer.send(topic, None, b"[]")
    after = envelope("evt_good_2", "customer_balance.adjustment", command(c, -300, "usd"), 1_700_000_003)
    await rig.producer.send(topic, c.encode(), orjson.dumps(after))

    report = await settle(rig)

    assert report.ok, report
    letters = {
        (d["source"]["topic"], d["source"]["partition"], d["source"]["offset"]): d
        for d in rig.collector.output.dead_letters
    }
    for code, source in sources.items():
        letter = letters[source]
        assert letter["error"]["code"] == code
        original = bad.get(code) or next(v for s, _k, v in rig.producer.sent if s == source)
        payload = (
            letter["payload"].encode() if letter["payload_encoding"] == "utf-8" else base64.b64decode(letter["payload"])
        )
        assert payload == original
        assert letter["source"]["key"] == c
        assert isinstance(letter["failed_at"], int)
    assert letters[tombstone]["error"]["code"] == "invalid_json"
    assert letters[tombstone]["payload"] is None
    assert (letters[keyless]["error"]["code"], letters[keyless]["source"]["key"]) == ("invalid_envelope", None)
    assert [t["ending_balance"] for t in rig.collector.output.transactions if t["customer"] == c] == [-700, -1000]


async def test_duplicates_change_nothing(rig: Rig) -> None:
    rig.worker().start()
    topic = rig.topic("invoice_events")
    c = b"cus_dup"
    events = every_type("cus_dup")
    messages = [(c, orjson.dumps(e)) for e in events]
    await rig.producer.send_many(topic, messages + messages[:5])
    # the same invoice finalised again under a new event id: at most once per invoice
    again = dict(events[4], id="evt_again")
    await rig.producer.send(topic, c, orjson.dumps(again))

    report = await settle(rig)

    assert report.ok, report
    assert report.redelivered == 0
    ids = [t["id"] for t in rig.collector.output.transactions]
    assert len(ids) == len(set(ids)) == 15


async def test_state_survives_a_restart(rig: Rig) -> None:
    proc = rig.worker().start()
    topic = rig.topic("balance_commands")
    c = b"cus_restart"
    first = [
        envelope(f"evt_r{i}", "customer_balance.adjustment", command("cus_restart", -1000, "usd"), 1_700_000_000 + i)
        for i in range(3)
    ]
    await rig.producer.send_many(topic, [(c, orjson.dumps(e)) for e in first])
    await settle(rig)
    assert proc.stop() == 0

    proc.start()
    # a duplicate of an applied event and an invoice that uses the recovered credit
    await rig.producer.send(topic, c, orjson.dumps(first[0]))
    inv = envelope(
        "evt_r_inv",
        "invoice.finalized",
        {"id": "in_r", "customer": "cus_restart", "currency": "usd", "total": 2500},
        1_700_000_100,
    )
    await rig.producer.send(topic, c, orjson.dumps(inv))
    report = await settle(rig)

    assert report.ok, report
    last = rig.collector.output.transactions[-1]
    assert (last["type"], last["amount"], last["ending_balance"]) == ("applied_to_invoice", 2500, -500)


async def test_kill_9_mid_stream_loses_nothing_and_applies_nothing_twice(rig: Rig) -> None:
    proc = rig.worker().start()
    topic = rig.topic("invoice_events")
    await rig.producer.send_many(topic, list(mixed(6000, customers=300, seed=11)))
    expected_total = await kill_9_during(rig, proc, kills=3)

    report = await settle(rig)

    assert report.ok, report
    print(f"3 × kill -9: {expected_total} transactions, {report.redelivered} identical redeliveries")


@pytest.mark.parametrize("consumer_thread", ["false", "true"], ids=["on-the-event-loop", "in-its-thread"])
async def test_state_follows_partitions_to_a_second_worker(rig: Rig, consumer_thread: str) -> None:
    first = rig.worker(PARTITIONS="8", CONSUMER_THREAD=consumer_thread).start()
    topic = rig.topic("invoice_events")
    messages = list(mixed(4000, customers=100, seed=5))
    await rig.producer.send_many(topic, messages[:2000])
    await settle(rig)
    second = rig.worker(PARTITIONS="8", CONSUMER_THREAD=consumer_thread).start()
    async with aiohttp.ClientSession() as http:
        await wait_ready(http, f"http://127.0.0.1:{second.web_port}", second)
    # Every customer already has state: a worker that takes partitions over must recover it first.
    await rig.producer.send_many(topic, messages[2000:])

    report = await settle(rig)

    assert report.ok, report
    assert first.alive and second.alive


async def test_a_graceful_stop_mid_stream_exits_cleanly_and_loses_nothing(rig: Rig) -> None:
    proc = rig.worker().start()
    topic = rig.topic("invoice_events")
    await rig.producer.send_many(topic, list(mixed(6000, customers=300, seed=13)))
    expected_total = len(expect(rig.producer.sent).transactions)
    await rig.collector.wait_until(lambda out: len(out.transactions) >= expected_total // 3, TIMEOUT, "a third")

    assert proc.stop(timeout=45) == 0  # SIGTERM; a batch left unacked would hang the stop until SIGKILL
    proc.start()
    report = await settle(rig)

    assert report.ok, report
