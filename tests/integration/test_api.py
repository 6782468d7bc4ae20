"""The HTTP API on a live worker: Stripe's own Python client, unchanged, is the acid test."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import aiohttp
import orjson
import pytest
import stripe
from aiokafka import AIOKafkaProducer

from tests.conftest import WORKER_SETTINGS
from worker.brokers.kafka import KafkaBroker
from worker.core.ids import transaction_id
from worker.harness.worker_process import Names, WorkerProcess
from worker.sample import command, envelope

TOKEN = "sk_test_balance_worker_0123456789"
T = TypeVar("T")


async def wait_until(probe: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll an async probe until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def wait_ready(http: aiohttp.ClientSession, base: str, proc: WorkerProcess, timeout: float = 90.0) -> None:
    """Wait until /readyz answers 200; fail with the log if the worker dies."""

    async def ready() -> bool:
        proc.check()
        try:
            async with http.get(f"{base}/readyz") as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False

    try:
        await wait_until(ready, "/readyz", timeout)
    except AssertionError:
        print(proc.log_tail())
        raise


class Live:
    """A running worker with the API enabled, a producer, and an HTTP session."""

    def __init__(self, names: Names, proc: WorkerProcess, producer: AIOKafkaProducer, http: aiohttp.ClientSession):
        self.names, self.proc, self.producer, self.http = names, proc, producer, http

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.proc.web_port}"

    async def command(self, event_id: str, customer: str, amount: int, currency: str = "usd") -> None:
        event = envelope(event_id, "customer_balance.adjustment", command(customer, amount, currency), 1_700_000_000)
        await (
            await self.producer.send(self.names.topic("balance_commands"), orjson.dumps(event), key=customer.encode())
        )

    async def get(self, path: str, **params: str) -> tuple[int, Any]:
        async with self.http.get(self.base + path, params=params) as response:
            return response.status, await response.json()


@pytest.fixture(scope="module")
async def live(kafka: KafkaBroker, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Live]:
    names = Names(f"t{uuid.uuid4().hex[:10]}")
    settings = {**names.settings(), **WORKER_SETTINGS, "API_TOKEN": TOKEN, "API_WAIT_TIMEOUT_S": "20"}
    proc = WorkerProcess(kafka.bootstrap, tmp_path_factory.mktemp("api"), settings).start()
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await producer.start()
    async with aiohttp.ClientSession() as http:
        live = Live(names, proc, producer, http)
        try:
            await wait_ready(http, live.base, proc)
            yield live
        finally:
            proc.kill()
            await producer.stop()


@pytest.fixture
def client(live: Live) -> stripe.StripeClient:
    """Stripe's own client, pointed at the worker."""
    return stripe.StripeClient(TOKEN, base_addresses={"api": live.base}, max_network_retries=0)


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Stripe's client is synchronous: run it off the event loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)


@pytest.fixture(autouse=True)
def global_stripe(live: Live) -> None:
    """The global-configuration style of Stripe's client, too."""
    stripe.api_key = TOKEN
    stripe.api_base = live.base
    stripe.max_network_retries = 0


async def test_health_readiness_and_metrics_pages(live: Live) -> None:
    assert await live.get("/healthz") == (200, {"status": "alive"})
    assert await live.get("/readyz") == (200, {"status": "ready"})
    async with live.http.get(live.base + "/metrics") as response:
        text = await response.text()
    assert response.status == 200
    assert "balance_rebalances_total" in text and "balance_events_total" in text


async def test_stripe_client_lists_retrieves_and_summarises_what_the_ledger_applied(live: Live) -> None:
    customer = "cus_stripe_list"
    for i, amount in enumerate([-100, -200, -300, 150, -50]):
        await live.command(f"evt_list_{i}", customer, amount)

    async def all_five() -> Any:
        listing = await call(stripe.Customer.list_balance_transactions, customer, limit=100)
        return listing if len(listing.data) == 5 else None

    listing = await wait_until(all_five, "five transactions in the history")
    ids = [transaction_id(f"evt_list_{i}", 0) for i in range(5)]
    assert [t.id for t in listing.data] == ids[::-1], "newest first (same created: arrival order)"
    assert [t.ending_balance for t in listing.data] == [-500, -450, -600, -300, -100]
    assert listing.has_more is False and listing.url == f"/v1/customers/{customer}/balance_transactions"

    first = await call(stripe.Customer.list_balance_transactions, customer, limit=2)
    assert [t.id for t in first.data] == ids[4:2:-1] and first.has_more
    after = await call(stripe.Customer.list_balance_transactions, customer, limit=2, starting_after=first.data[-1].id)
    assert [t.id for t in after.data] == ids[2:0:-1] and after.has_more
    before = await call(stripe.Customer.list_balance_transactions, customer, limit=2, ending_before=after.data[0].id)
    assert [t.id for t in before.data] == [t.id for t in first.data] and not before.has_more
    paged = [
        t.id for t in (await call(stripe.Customer.list_balance_transactions, customer, limit=2)).auto_paging_iter()
    ]
    assert paged == ids[::-1], "auto-pagination follows starting_after to the end"
    none = await call(stripe.Customer.list_balance_transactions, customer, created={"gt": 1_700_000_000})
    assert none.data == []

    one = await call(stripe.Customer.retrieve_balance_transaction, customer, ids[2])
    assert one.id == ids[2] and one.amount == -300 and one.object == "customer_balance_transaction"

    summary = await call(
        stripe.billing.CreditBalanceSummary.retrieve,
        customer=customer,
        filter={"type": "applicability_scope", "applicability_scope": {"price_type": "metered"}},
    )
    assert summary.object == "billing.credit_balance_summary" and summary.customer == customer
    assert summary.balances[0].available_balance.monetary.value == 500
    assert summary.balances[0].ledger_balance.monetary.currency == "usd"


async def test_create_is_idempotent_per_key_and_refuses_other_parameters(
    live: Live, client: stripe.StripeClient
) -> None:
    customer = "cus_stripe_create"
    params = {"amount": -1250, "currency": "usd", "description": "goodwill", "metadata": {"ticket": "T-1"}}
    created = await call(stripe.Customer.create_balance_transaction, customer, idempotency_key="key-1", **params)
    assert created.amount == -1250 and created.type == "adjustment" and created.ending_balance == -1250
    assert created.metadata.to_dict() == {"ticket": "T-1"} and created.description == "goodwill"

    again = await call(stripe.Customer.create_balance_transaction, customer, idempotency_key="key-1", **params)
    assert again.id == created.id and again.ending_balance == -1250

    with pytest.raises(stripe.IdempotencyError):
        await call(
            stripe.Customer.create_balance_transaction, customer, idempotency_key="key-1", amount=-1, currency="usd"
        )

    other = await call(
        client.v1.customers.balance_transactions.create,
        customer,
        {"amount": 250, "currency": "usd"},
        {"idempotency_key": "key-2"},
    )
    assert other.id != created.id and other.ending_balance == -1000

    listing = await call(stripe.Customer.list_balance_transactions, customer)
    assert [t.id for t in listing.data] == [other.id, created.id], "the retried request created nothing"
    summary = await call(
        stripe.billing.CreditBalanceSummary.retrieve, customer=customer, filter={"type": "credit_grant"}
    )
    assert summary.balances[0].available_balance.monetary.value == 1000


async def test_errors_have_stripes_shape_and_status(live: Live) -> None:
    customer = "cus_stripe_errors"
    with pytest.raises(stripe.InvalidRequestError) as bad_amount:
        await call(stripe.Customer.create_balance_transaction, customer, amount=0, currency="usd")
    assert bad_amount.value.http_status == 400 and bad_amount.value.param == "amount"
    with pytest.raises(stripe.InvalidRequestError) as bad_currency:
        await call(stripe.Customer.create_balance_transaction, customer, amount=5, currency="xyz")
    assert bad_currency.value.param == "currency"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        await call(stripe.Customer.create_balance_transaction, customer, currency="usd")
    assert missing.value.code == "parameter_missing" and missing.value.param == "amount"
    with pytest.raises(stripe.AuthenticationError) as unauthorized:
        await call(stripe.Customer.create_balance_transaction, customer, amount=5, currency="usd", api_key="sk_wrong")
    assert unauthorized.value.http_status == 401
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        await call(stripe.Customer.retrieve_balance_transaction, customer, "cbtxn_missing")
    assert unknown.value.http_status == 404 and unknown.value.code == "resource_missing"

    status, body = await live.get(f"/v1/customers/{customer}/balance_transactions", limit="101")
    assert status == 400 and body["error"]["param"] == "limit" and body["error"]["type"] == "invalid_request_error"
    assert set(body["error"]) == {"type", "code", "message", "param"}
    status, body = await live.get("/v1/billing/credit_balance_summary")
    assert status == 400 and body["error"]["code"] == "parameter_missing"
    status, body = await live.get(f"/v1/billing/credit_balance_summary?customer={customer}")
    assert (status, body["balances"]) == (200, []), "a customer never seen holds nothing"


async def test_concurrent_requests_with_one_key_apply_once(live: Live) -> None:
    customer = "cus_stripe_race"
    url = f"{live.base}/v1/customers/{customer}/balance_transactions"
    headers = {"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": "race"}

    async def post() -> tuple[int, Any]:
        async with live.http.post(url, data={"amount": "-70", "currency": "eur"}, headers=headers) as response:
            return response.status, await response.json()

    answers = await asyncio.gather(*(post() for _ in range(5)))
    statuses = sorted(status for status, _ in answers)
    assert 200 in statuses and set(statuses) <= {200, 409}, answers
    ids = {body["id"] for status, body in answers if status == 200}
    assert len(ids) == 1
    status, again = await post()
    assert status == 200 and again["id"] in ids
    status, listing = await live.get(f"/v1/customers/{customer}/balance_transactions")
    assert [t["id"] for t in listing["data"]] == list(ids)


def test_worker_log_never_shows_the_token(live: Live) -> None:
    assert TOKEN not in live.proc.log_path.read_text(errors="replace")
