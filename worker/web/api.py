"""The HTTP API, in Stripe's own shapes, so Stripe's clients work unchanged.

- `GET  /v1/customers/{customer}/balance_transactions` (list) and `.../{id}` (retrieve)
- `POST /v1/customers/{customer}/balance_transactions` (an adjustment; bearer token and Idempotency-Key)
- `GET  /v1/billing/credit_balance_summary?customer=...`

Every request is answered by the worker that owns the customer's partition
(others forward it there). A POST becomes a `customer_balance.adjustment`
command whose event id is derived from the customer and the idempotency key,
so the ledger's event-id dedupe applies a retried request once; the answer
waits until the history holds the resulting transaction, and a key reused
with other parameters is refused by comparing them with that transaction.
"""

import asyncio
import hashlib
import hmac
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import orjson
from aiohttp import web
from aiohttp.web import Response
from faust.web import View
from multidict import MultiDictProxy
from pydantic import SecretStr, ValidationError

from worker.core.currencies import is_supported
from worker.core.ids import transaction_id
from worker.core.ledger import summarise
from worker.metrics import API_REQUESTS
from worker.models.events import BalanceCommand
from worker.models.records import CreditBalanceSummary
from worker.settings import Settings
from worker.streams.history import History, Transaction
from worker.streams.publish import Record, publish
from worker.streams.tables import CustomerTable
from worker.web.errors import ApiError, missing, no_such_transaction, parse_integer
from worker.web.listing import ListParams, list_object, page
from worker.web.routing import forward, owner, unavailable

log = logging.getLogger(__name__)

API_VERSION = "2025-03-31.basil"
MAX_PENDING_WRITES = 1000
"""Writes waiting for the ledger at once; more are refused with 429."""
MAX_IDEMPOTENCY_KEY = 255
COMMAND_FIELDS = ("amount", "currency", "description")


def event_id_for(customer: str, idempotency_key: str) -> str:
    """The command's event id: the same customer and key always give the same one."""
    digest = hashlib.sha256(f"{customer}\x00{idempotency_key}".encode()).hexdigest()
    return f"evt_api_{digest[:32]}"


def parse_command(customer: str, form: MultiDictProxy[Any]) -> BalanceCommand:
    """Stripe's form parameters as a command, checked as the ledger would check it."""
    fields: dict[str, str] = {}
    metadata: dict[str, str] = {}
    for name, value in form.items():
        if not isinstance(value, str):
            raise ApiError(400, f"Invalid value for {name}: a string is required.", param=name)
        if name.startswith("metadata[") and name.endswith("]"):
            if value:
                metadata[name[len("metadata[") : -1]] = value
        elif name in COMMAND_FIELDS:
            fields[name] = value
        elif not name.startswith("expand["):
            raise ApiError(400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name)
    for name in ("amount", "currency"):
        if not fields.get(name):
            raise missing(name)
    amount = parse_integer("amount", fields["amount"])
    if amount == 0:
        raise ApiError(400, "Invalid amount: it must not be zero.", code="parameter_invalid_integer", param="amount")
    try:
        command = BalanceCommand.model_validate(
            {
                "customer": customer,
                "amount": amount,
                "currency": fields["currency"],
                "description": fields.get("description") or None,
                "metadata": metadata,
            }
        )
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        loc = [str(part) for part in error["loc"]]
        param = loc[0] + "".join(f"[{part}]" for part in loc[1:2])
        raise ApiError(400, f"Invalid {param}: {error['msg']}", code="parameter_invalid", param=param) from None
    if not is_supported(command.currency):
        raise ApiError(400, f"Invalid currency: {command.currency}.", code="parameter_invalid_string", param="currency")
    return command


def authorize(token: SecretStr | None, authorization: str) -> None:
    """Writes need the configured bearer token; without one they are disabled."""
    if token is None or not token.get_secret_value():
        raise ApiError(403, "Writes are disabled: the worker has no BALANCE_API_TOKEN.", code="writes_disabled")
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
        raise ApiError(401, "Invalid API Key provided.", code="invalid_api_key")


def same_request(txn: Transaction, command: BalanceCommand) -> bool:
    """Whether an existing transaction is what this command would have created."""
    return bool(
        txn["type"] == "adjustment"
        and txn["amount"] == command.amount
        and txn["currency"] == command.currency
        and txn["description"] == command.description
        and txn["metadata"] == (command.metadata or {})
    )


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer."""
    return web.Response(body=orjson.dumps(value), status=status, content_type="application/json", headers=headers)


class Api:
    """The endpoints of one worker, over its customers and history tables."""

    def __init__(self, app: faust.App, settings: Settings, customers: CustomerTable, history: History) -> None:
        self.app = app
        self.settings = settings
        self.customers = customers
        self.history = history
        self.command_topic = settings.topic_balance_commands
        self._pending: set[str] = set()

    def register(self) -> None:
        """Add the views to the app's web server."""
        api = self

        @self.app.page("/v1/customers/{customer}/balance_transactions")
        class CustomerBalanceTransactions(View):
            async def get(self, request: web.Request, customer: str) -> Response:
                return await api.serve("list", request, customer, lambda: api.list(request, customer))

            async def post(self, request: web.Request, customer: str) -> Response:
                return await api.serve("create", request, customer, lambda: api.create(request, customer), write=True)

        @self.app.page("/v1/customers/{customer}/balance_transactions/{transaction}")
        class CustomerBalanceTransaction(View):
            async def get(self, request: web.Request, customer: str, transaction: str) -> Response:
                return await api.serve("retrieve", request, customer, lambda: api.retrieve(customer, transaction))

        @self.app.page("/v1/billing/credit_balance_summary")
        class CreditBalanceSummaryView(View):
            async def get(self, request: web.Request) -> Response:
                customer = request.query.get("customer", "")
                return await api.serve("summary", request, customer, lambda: api.summary(customer))

    async def serve(
        self,
        endpoint: str,
        request: web.Request,
        customer: str,
        handle: Callable[[], Awaitable[Response]],
        write: bool = False,
    ) -> Response:
        """Authorize, route to the customer's owner, handle, and turn errors into Stripe's shape."""
        try:
            if write:
                authorize(self.settings.api_token, request.headers.get("Authorization", ""))
            if not customer:
                raise missing("customer")
            dest = owner(self.app, self.customers.table.name, customer)
            response = await (handle() if dest is None else forward(self.app, dest, request, self.wait_timeout))
        except ApiError as exc:
            response = json_response(exc.body(), exc.status)
        except Exception:  # a bug; never show its details
            log.exception("the %s endpoint failed", endpoint)
            response = json_response(ApiError(500, "An internal error occurred.", type="api_error").body(), 500)
        API_REQUESTS.labels(endpoint, str(response.status)).inc()
        return response

    @property
    def wait_timeout(self) -> float:
        """How long a request may wait for the ledger (and a forwarded one a little more)."""
        return self.settings.api_wait_timeout_s + 5.0

    async def list(self, request: web.Request, customer: str) -> Response:
        """`GET /v1/customers/{customer}/balance_transactions`."""
        params = ListParams.parse(request.query)
        data, has_more = page(self.history.transactions(customer.encode()), params)
        return json_response(list_object(f"/v1/customers/{customer}/balance_transactions", data, has_more))

    async def retrieve(self, customer: str, txn_id: str) -> Response:
        """`GET /v1/customers/{customer}/balance_transactions/{id}`."""
        txn = self.history.find(customer.encode(), txn_id)
        if txn is None:
            raise no_such_transaction(txn_id)
        return json_response(txn)

    async def summary(self, customer: str) -> Response:
        """`GET /v1/billing/credit_balance_summary`; Stripe's `filter[...]` is accepted and ignored."""
        state = self.customers.get(customer.encode())
        summary = (
            CreditBalanceSummary(balances=[], customer=customer, livemode=False)
            if state is None
            else summarise(customer, state)
        )
        return json_response(summary.model_dump(mode="json"))

    async def create(self, request: web.Request, customer: str) -> Response:
        """`POST /v1/customers/{customer}/balance_transactions`: apply an adjustment once per key."""
        command = parse_command(customer, await request.post())
        key = request.headers.get("Idempotency-Key") or uuid.uuid4().hex
        if len(key) > MAX_IDEMPOTENCY_KEY:
            raise ApiError(400, "Idempotency-Key is longer than 255 characters.", code="idempotency_key_too_long")
        event_id = event_id_for(customer, key)
        txn_id = transaction_id(event_id, 0)
        txn = self.history.find(customer.encode(), txn_id)
        replayed = txn is not None
        if txn is None:
            txn = await self._apply(customer, command, event_id, txn_id, key)
        if not same_request(txn, command):
            raise ApiError(
                400,
                "Keys for idempotent requests can only be used with the same parameters they were first used with.",
                type="idempotency_error",
                code="idempotency_key_reused",
            )
        return json_response(txn, headers={"Idempotent-Replayed": "true"} if replayed else None)

    async def _apply(self, customer: str, command: BalanceCommand, event_id: str, txn_id: str, key: str) -> Transaction:
        """Send the command (unless already applied) and wait until its transaction is kept."""
        if event_id in self._pending:
            raise ApiError(
                409,
                "There is currently another in-progress request using this idempotency key.",
                type="idempotency_error",
                code="idempotency_key_in_use",
            )
        if len(self._pending) >= MAX_PENDING_WRITES:
            raise ApiError(
                429, "Too many requests hit the API too quickly.", type="rate_limit_error", code="rate_limit"
            )
        self._pending.add(event_id)
        try:
            state = self.customers.get(customer.encode())
            if state is None or event_id not in state.seen:
                livemode = bool(state is not None and state.livemode)
                envelope = self._envelope(event_id, command, livemode, key)
                try:
                    await asyncio.wait_for(
                        publish(
                            self.app.producer,
                            [Record(self.command_topic, customer.encode(), orjson.dumps(envelope))],
                        ),
                        self.settings.api_wait_timeout_s,
                    )
                except TimeoutError:
                    raise unavailable("the command could not be sent to Kafka") from None
            txn = await self.history.wait_for(customer.encode(), txn_id, self.settings.api_wait_timeout_s)
        finally:
            self._pending.discard(event_id)
        if txn is None:
            raise unavailable("the adjustment is not applied yet; retry with the same Idempotency-Key")
        return txn

    @staticmethod
    def _envelope(event_id: str, command: BalanceCommand, livemode: bool, key: str) -> dict[str, Any]:
        """The Stripe event envelope of the command."""
        return {
            "id": event_id,
            "object": "event",
            "type": "customer_balance.adjustment",
            "created": int(time.time()),
            "livemode": livemode,
            "api_version": API_VERSION,
            "data": {"object": command.model_dump(mode="json")},
            "request": {"id": None, "idempotency_key": key},
        }
