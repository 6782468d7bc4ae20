"""The live dashboard in a real browser (Debian's chromium, headless, via Playwright) against a worker on Kafka."""

import asyncio
import contextlib
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from playwright.async_api import Page, async_playwright, expect

from tests.conftest import WORKER_SETTINGS
from tests.integration.test_api import wait_ready
from worker.brokers.kafka import KafkaBroker
from worker.harness.worker_process import Names, WorkerProcess
from worker.sample import command, envelope

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CUSTOMERS = 5


@pytest.fixture
async def worker(kafka: KafkaBroker, tmp_path: Path) -> AsyncIterator[tuple[WorkerProcess, Names, AIOKafkaProducer]]:
    names = Names(f"t{uuid.uuid4().hex[:10]}")
    proc = WorkerProcess(kafka.bootstrap, tmp_path / "worker", {**names.settings(), **WORKER_SETTINGS}).start()
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await producer.start()
    try:
        async with aiohttp.ClientSession() as http:
            await wait_ready(http, f"http://127.0.0.1:{proc.web_port}", proc)
        yield proc, names, producer
    finally:
        proc.kill()
        await producer.stop()


async def traffic(names: Names, producer: AIOKafkaProducer, stop: asyncio.Event) -> None:
    """Known events first (credits, one bad amount, one bad JSON), then a steady stream of duplicates."""
    topic = names.topic("balance_commands")
    for i in range(CUSTOMERS):
        customer = f"cus_dash{i}"
        for j in range(i + 1):
            event = envelope(
                f"evt_d{i}_{j}", "customer_balance.adjustment", command(customer, -1000, "usd"), 1_700_000_000 + j
            )
            await producer.send(topic, orjson.dumps(event), key=customer.encode())
    bad = envelope("evt_bad", "customer_balance.adjustment", command("cus_dash0", 0, "usd"), 1_700_000_000)
    await producer.send(topic, orjson.dumps(bad), key=b"cus_dash0")
    await producer.send(names.topic("invoice_events"), b"not json", key=b"cus_dash1")
    while not stop.is_set():  # live traffic: already-applied ids, skipped as duplicates
        event = envelope("evt_d0_0", "customer_balance.adjustment", command("cus_dash0", -1000, "usd"), 1_700_000_000)
        await producer.send(topic, orjson.dumps(event), key=b"cus_dash0")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.05)


def cell(page: Page, table: str, key: str) -> object:
    """The number in the row of `key` of a dashboard table."""
    return page.locator(f"#{table} tr:has(td[data-key='{key}']) td.n").last


async def test_dashboard_shows_live_numbers_and_opens_a_customer(
    worker: tuple[WorkerProcess, Names, AIOKafkaProducer], tmp_path: Path
) -> None:
    proc, names, producer = worker
    stop = asyncio.Event()
    sender = asyncio.create_task(traffic(names, producer, stop))
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
            page = await browser.new_page(viewport={"width": 1280, "height": 1100})
            await page.goto(f"http://127.0.0.1:{proc.web_port}/dashboard")

            applied = CUSTOMERS * (CUSTOMERS + 1) // 2
            await expect(page.locator("#transactions td[data-key='adjustment'].n")).to_have_text(
                str(applied), timeout=60_000
            )
            await expect(page.locator("#dlq td[data-key='invalid_amount'].n")).to_have_text("1")
            await expect(page.locator("#dlq td[data-key='invalid_json'].n")).to_have_text("1")
            top = page.locator("#top tr").nth(1)
            await expect(top).to_contain_text("cus_dash4")
            await expect(top).to_contain_text("5,000")
            await expect(page.locator("#rate-chart polyline")).to_have_count(1, timeout=30_000)
            await expect(page.locator("#lag-chart polyline")).to_have_count(1)
            await expect(page.locator("#rate")).not_to_have_text(re.compile(r"^(–|0)$"), timeout=30_000)  # live
            await expect(page.locator("#outcomes td[data-key='skipped_duplicate']").first).to_be_visible()

            await page.fill("#customer", "cus_dash2")
            await page.click("#search button")
            await expect(page.locator("#customer-balances td[data-key='credit']")).to_have_text("3,000")
            await expect(page.locator("#customer-transactions tr")).to_have_count(4)  # header + 3 adjustments
            await expect(page.locator("#customer-transactions tr").nth(1)).to_contain_text("-3,000")

            shot = tmp_path / "dashboard.png"
            await page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            await browser.close()
    finally:
        stop.set()
        await sender
