"""Send a request to the worker that owns a customer's partition, body and all.

Faust's `table_route` forwards only the method, URL and headers, so a POST
would lose its form; this forwards the body too and refuses a second hop (a
request forwarded during a rebalance gets 503 rather than bouncing around).
"""

import aiohttp
import faust
from aiohttp import web
from yarl import URL

from worker.web.errors import ApiError

ROUTED_HEADER = "X-Balance-Routed"
FORWARDED_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "Stripe-Version")
RESPONSE_HEADERS = ("Content-Type", "Idempotent-Replayed")


def owner(app: faust.App, table: str, key: str) -> URL | None:
    """The owning worker's URL, or None when it is this one."""
    try:
        dest: URL = app.router.key_store(table, key.encode())
    except KeyError:
        raise unavailable("partitions are not assigned yet") from None
    here: URL = app.conf.canonical_url
    return None if (dest.host, dest.port) == (here.host, here.port) else dest


async def forward(app: faust.App, dest: URL, request: web.Request, timeout: float) -> web.Response:
    """The owner's answer to the same request."""
    if request.headers.get(ROUTED_HEADER):
        raise unavailable("the customer's partition is moving between workers")
    headers = {name: request.headers[name] for name in FORWARDED_HEADERS if name in request.headers}
    headers[ROUTED_HEADER] = "1"
    url = dest.with_path(request.path).with_query(request.query)
    try:
        async with app.http_client.request(
            request.method,
            url,
            data=await request.read(),
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as answer:
            body = await answer.read()
            kept = {name: answer.headers[name] for name in RESPONSE_HEADERS if name in answer.headers}
            return web.Response(body=body, status=answer.status, headers=kept)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise unavailable(f"the worker owning the customer did not answer ({type(exc).__name__})") from None


def unavailable(why: str) -> ApiError:
    """503, which Stripe's clients may retry."""
    return ApiError(503, f"Service unavailable: {why}; try again.", type="api_error", code="service_unavailable")
