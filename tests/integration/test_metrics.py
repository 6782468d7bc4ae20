"""Two workers of one app: Prometheus metrics per worker, API requests routed to the owner, the merged dashboard."""

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import WORKER_SETTINGS
from tests.integration.test_api import wait_ready, wait_until
from worker.brokers.kafka import KafkaBroker
from worker.harness.worker_process import Names, WorkerProcess
from worker.sample import command, envelope

TOKEN = "sk_test_metrics"
PARTITIONS = int(WORKER_SETTINGS["PARTITIONS"])
CUSTOMERS = [f"cus_m{i}" for i in range(12)]


@dataclass
class Pair:
    names: Names
    workers: list[WorkerProcess]
    producer: AIOKafkaProducer
    http: aiohttp.ClientSession

    def base(self, i: int) -> str:
        return f"http://127.0.0.1:{self.workers[i].web_port}"

    async def metrics(self, i: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        async with self.http.get(self.base(i) + "/metrics") as response:
            text = await response.text()
        assert "cus_" not in text, "no customer ids in labels"
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    async def json(self, i: int, path: str) -> tuple[int, Any]:
        async with self.http.get(self.base(i) + path) as response:
            return response.status, orjson.loads(await response.read())


@pytest.fixture(scope="module")
async def pair(kafka: KafkaBroker, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Pair]:
    names = Names(f"t{uuid.uuid4().hex[:10]}")
    settings = {**names.settings(), **WORKER_SETTINGS, "API_TOKEN": TOKEN, "WEB_HOST": "127.0.0.1"}
    workdir = tmp_path_factory.mktemp("pair")
    workers = [WorkerProcess(kafka.bootstrap, workdir / f"w{i}", settings) for i in range(2)]
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await producer.start()
    async with aiohttp.ClientSession() as http:
        pair = Pair(names, workers, producer, http)
        try:
            for proc in workers:
                proc.start()
            for proc in workers:
                await wait_ready(http, f"http://127.0.0.1:{proc.web_port}", proc)

            async def both_in_the_group() -> bool:
                status, data = await pair.json(0, "/dashboard/data.json")
                return status == 200 and len(data["workers"]) == 2

            await wait_until(both_in_the_group, "both workers in the partition assignment")
            for i, customer in enumerate(CUSTOMERS):
                event = envelope(
                    f"evt_m{i}", "customer_balance.adjustment", command(customer, -100 * (i + 1), "usd"), 1
                )
                await producer.send(names.topic("balance_commands"), orjson.dumps(event), key=customer.encode())
            bad = envelope("evt_bad", "customer_balance.adjustment", command("cus_m0", 0, "usd"), 1)
            await producer.send(names.topic("balance_commands"), orjson.dumps(bad), key=b"cus_m0")
            await producer.send(names.topic("invoice_events"), b"{not json", key=b"cus_m1")
            await producer.flush()
            yield pair
        finally:
            for proc in workers:
                proc.kill()
            await producer.stop()


def total(metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in metrics.items() if n == name and set(labels.items()) <= set(ls))


async def test_metrics_of_both_workers_add_up_to_the_traffic(pair: Pair) -> None:
    async def settled() -> list[dict[tuple[str, tuple[tuple[str, str], ...]], float]] | None:
        both = [await pair.metrics(0), await pair.metrics(1)]
        applied = sum(total(m, "balance_events_total", outcome="applied") for m in both)
        entries = sum(total(m, "balance_state_entries", table="customers") for m in both)
        return both if applied == len(CUSTOMERS) and entries >= len(CUSTOMERS) else None

    both = await wait_until(settled, "every event applied and the state measured")
    assert sum(total(m, "balance_events_total", outcome="dlq", code="invalid_amount") for m in both) == 1
    assert sum(total(m, "balance_events_total", outcome="dlq", code="invalid_json") for m in both) == 1
    assert sum(total(m, "balance_transactions_total", type="adjustment", currency="usd") for m in both) == len(
        CUSTOMERS
    )
    for m in both:
        assert total(m, "balance_rebalances_total") >= 1
        assert total(m, "balance_state_bytes", table="customers") > 0
        latency = total(m, "balance_processing_seconds_count")
        assert latency > 0 and total(m, "balance_processing_seconds_sum") < latency * 30
    by_customer = pair.names.by_customer
    lag_partitions = {
        dict(ls)["partition"]
        for m in both
        for (n, ls) in m
        if n == "balance_consumer_lag" and dict(ls)["topic"] == by_customer
    }
    assert lag_partitions == {str(p) for p in range(PARTITIONS)}, "every partition reported by its owner"


async def test_api_answers_the_same_on_every_worker(pair: Pair) -> None:
    async def history_complete() -> bool:
        status, data = await pair.json(0, f"/v1/customers/{CUSTOMERS[-1]}/balance_transactions")
        return status == 200 and len(data["data"]) == 1

    await wait_until(history_complete, "the history of the last customer")
    for customer in CUSTOMERS:
        answers = [await pair.json(i, f"/v1/billing/credit_balance_summary?customer={customer}") for i in (0, 1)]
        assert answers[0] == answers[1] and answers[0][0] == 200
        lists = [await pair.json(i, f"/v1/customers/{customer}/balance_transactions") for i in (0, 1)]
        assert lists[0] == lists[1] and len(lists[0][1]["data"]) == 1

    headers = {"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": "routed"}
    created = []
    for i in (0, 1):  # the same key through either worker: one transaction
        async with pair.http.post(
            f"{pair.base(i)}/v1/customers/cus_m3/balance_transactions",
            data={"amount": "-5", "currency": "usd", "metadata[source]": "routing"},
            headers=headers,
        ) as response:
            assert response.status == 200, await response.text()
            created.append(await response.json())
    assert created[0]["id"] == created[1]["id"] and created[0]["ending_balance"] == -405
    assert created[1]["metadata"] == {"source": "routing"}

    served = [await pair.metrics(i) for i in (0, 1)]
    assert all(total(m, "balance_api_requests_total", endpoint="summary", status="200") > 0 for m in served)


async def test_dashboard_data_merges_both_workers(pair: Pair) -> None:
    async def merged() -> Any:
        status, data = await pair.json(1, "/dashboard/data.json")
        transactions = data["transactions"]
        return data if status == 200 and transactions.get("adjustment", 0) >= len(CUSTOMERS) else None

    data = await merged() or await wait_until(merged, "merged dashboard data")
    assert len(data["workers"]) == 2
    assert data["dlq"] == {"invalid_amount": 1, "invalid_json": 1}
    top = data["top"]
    assert top[0] == {"customer": CUSTOMERS[-1], "currency": "usd", "credit": 100 * len(CUSTOMERS)}
    assert len(top) == 10
    assert re.search(r"<title>balance-worker</title>", await (await pair.http.get(pair.base(0) + "/dashboard")).text())
